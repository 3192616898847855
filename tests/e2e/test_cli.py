"""The CLI and the server as subprocesses, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from adapters.web.passwords import verify_password
from tests.e2e.serve import run, serve
from tests.support.fake_slack import APP_TOKEN as SLACK_APP_TOKEN
from tests.support.fake_slack import TOKEN as SLACK_TOKEN
from tests.support.fake_slack import FakeSlack

pytestmark = pytest.mark.slow

CONFIG = """
agents:
  - id: invoice-bot
    key_sha256: {digest}
tiers:
  - {{name: junior, sla: 15m, reviewers: [web:jan]}}
  - {{name: senior, sla: 1h, reviewers: [web:sam]}}
  - {{name: manager, sla: 4h, reviewers: [web:max]}}
"""


def test_embedded_default_walk_through(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        key = server.api_key
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            body = {
                "thread_id": "lg-42",
                "action": {"kind": "payment", "summary": "Pay INV-123", "payload": {"i": 1}},
                "confidence": 0.95,
                "amount": 5000,
                "currency": "USD",
            }
            created = client.post("/v1/requests", json=body, headers={"Idempotency-Key": "k1"})
            assert created.status_code == 201, created.text
            answer = created.json()
            assert answer["status"] == "pending" and answer["tier"] == "manager"
            assert answer["reasons"] == ["high_value_transaction"]
            replay = client.post("/v1/requests", json=body, headers={"Idempotency-Key": "k1"})
            assert replay.status_code == 200 and replay.json() == answer
            waited = client.get(f"/v1/requests/{answer['id']}/wait", params={"timeout": 0.5})
            assert waited.json()["status"] == "pending"
            pending = client.get("/v1/requests", params={"status": "pending"}).json()
            assert [r["id"] for r in pending["items"]] == [answer["id"]]
            quick = client.post(
                "/v1/requests",
                json={"action": {"kind": "invoice", "summary": "File INV-124"}, "confidence": 0.9},
            ).json()
            assert quick["status"] == "approved" and quick["lane"] == "autonomous"
            assert client.post(f"/v1/requests/{answer['id']}/cancel").json()["status"] == (
                "cancelled"
            )
            assert client.get("/readyz").status_code == 200
            assert "signoff_requests_total" in client.get("/metrics").text
            assert client.get("/openapi.json").json()["info"]["title"] == "Signoff"
        assert httpx.get(f"{server.url}/v1/requests", timeout=5).status_code == 401
    assert (tmp_path / "signoff.db").exists()

    # A restart keeps the demo key (kept beside the database, owner-only) and the data.
    kept = tmp_path / "signoff.demo-key"
    assert kept.read_text().strip() == key and kept.stat().st_mode & 0o777 == 0o600
    with serve(tmp_path) as again:
        assert again.api_key == key
        same = httpx.get(f"{again.url}/v1/requests", headers=auth, timeout=5)
        assert same.status_code == 200 and len(same.json()["items"]) == 2

    verified = run("audit", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout
    exported = run("audit", "export", "--format", "jsonl", cwd=tmp_path)
    events = [json.loads(line)["event"] for line in exported.stdout.splitlines()]
    # The first start generated the audit key beside the database and recorded the switch.
    assert events[:3] == ["audit_keyed", "submitted", "routed"]
    assert (tmp_path / "signoff.db.audit-key").stat().st_mode & 0o777 == 0o600
    assert "cancelled" in events
    csv_out = run("audit", "export", "--format", "csv", "--last", "2", cwd=tmp_path)
    assert csv_out.stdout.splitlines()[0].startswith("seq,at,event")
    assert len(csv_out.stdout.splitlines()) == 3
    high = run("audit", "export", "--risk", "high", cwd=tmp_path)
    assert all(json.loads(line)["risk"] == "high" for line in high.stdout.splitlines())


def test_audit_verify_names_the_tampered_event(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        auth = {"Authorization": f"Bearer {server.api_key}"}
        for i in range(3):
            httpx.post(
                f"{server.url}/v1/requests",
                headers=auth,
                json={"action": {"kind": "k", "summary": f"s{i}"}, "confidence": 0.3},
            )
    assert run("audit", "verify", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "signoff.db") as db:
        (actor,) = db.execute("SELECT actor FROM audit_events WHERE seq = 4").fetchone()
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    broken = run("audit", "verify", cwd=tmp_path)
    assert broken.returncode == 1
    assert "event 4" in broken.stderr
    with sqlite3.connect(tmp_path / "signoff.db") as db:
        db.execute("UPDATE audit_events SET actor = ? WHERE seq = 4", (actor,))
    assert run("audit", "verify", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "signoff.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq >= 5")
    truncated = run("audit", "verify", cwd=tmp_path)
    assert truncated.returncode == 1 and "event 5" in truncated.stderr
    with sqlite3.connect(tmp_path / "signoff.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq = 2")
    removed = run("audit", "verify", cwd=tmp_path)
    assert removed.returncode == 1 and "event 2" in removed.stderr


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("tiers:\n  - {name: a, sla: 15m}\n  - {name: b, sla: 15x}\n", "tiers[1].sla"),
        ("surprise: 1\n", "surprise"),
        ("routing:\n  rules:\n    - {name: broken, when: 'amount >'}\n", "routing.rules[0].when"),
        ("routing:\n  on_timeout: {high: approve}\n", "routing.on_timeout"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, text: str, path: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run("serve", "--config", str(config), "--port", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert path in result.stderr
    assert not (tmp_path / "signoff.db").exists()
    checked = run("policy", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 2 and path in checked.stderr


def test_configured_agent_keys_policy_check_and_route(tmp_path: Path) -> None:
    new = run("keys", "new", "invoice-bot", cwd=tmp_path)
    assert new.returncode == 0
    fields = dict(line.split(": ", 1) for line in new.stdout.splitlines())
    assert hashlib.sha256(fields["api_key"].encode()).hexdigest() == fields["key_sha256"]
    config = tmp_path / "signoff.yaml"
    config.write_text(CONFIG.format(digest=fields["key_sha256"]))

    checked = run("policy", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "high_value_transaction" in checked.stdout

    routed = run(
        "route",
        str(config),
        cwd=tmp_path,
        stdin=json.dumps(
            {
                "action": {"kind": "delete", "summary": "drop"},
                "confidence": 0.99,
                "reversible": False,
            }
        ),
    )
    assert routed.returncode == 0, routed.stderr
    decision = json.loads(routed.stdout)
    assert decision["lane"] == "escalate" and decision["approvals_required"] == 2
    assert decision["tier"] == "manager"
    bad = run("route", str(config), cwd=tmp_path, stdin='{"confidence": 2}')
    assert bad.returncode == 1 and "confidence" in bad.stderr

    db = tmp_path / "other.db"
    upgraded = run(
        "db",
        "upgrade",
        "--config",
        str(config),
        cwd=tmp_path,
        env={"SIGNOFF_DATABASE_URL": f"sqlite:///{db}"},
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert db.exists()

    with serve(tmp_path, config=config) as server:
        auth = {"Authorization": f"Bearer {fields['api_key']}"}
        response = httpx.post(
            f"{server.url}/v1/requests",
            headers=auth,
            json={"action": {"kind": "refund", "summary": "Refund"}, "confidence": 0.6},
        )
        assert response.status_code == 201
        assert response.json()["reasons"] == ["medium_risk_change"]
        assert not any("api key:" in line for line in server.lines)


def test_hash_password_reads_stdin(tmp_path: Path) -> None:
    result = run("web", "hash-password", cwd=tmp_path, stdin="correct horse\n")
    assert result.returncode == 0
    encoded = result.stdout.strip()
    assert encoded.startswith("scrypt$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong", encoded)
    assert run("web", "hash-password", cwd=tmp_path, stdin="").returncode == 1


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["keys", "new"],
        ["web", "hash-password"],
        ["web", "login-link"],
        ["init"],
        ["policy", "check"],
        ["route"],
        ["db", "upgrade"],
        ["audit", "export"],
        ["audit", "verify"],
        ["audit", "checkpoint"],
        ["report"],
        ["export", "training"],
        ["calibrate"],
    ],
)
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage: signoff" in result.stdout


def test_report_prints_the_metrics_and_writes_html(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        auth = {"Authorization": f"Bearer {server.api_key}"}
        for confidence in (0.9, 0.9, 0.6, 0.3):
            httpx.post(
                f"{server.url}/v1/requests",
                headers=auth,
                json={"action": {"kind": "invoice", "summary": "x"}, "confidence": confidence},
            )
    page = tmp_path / "report.html"
    result = run("report", "--since", "1d", "--html", str(page), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Requests" in result.stdout and "4" in result.stdout
    assert "Escalation rate" in result.stdout
    assert "n=4, too few to judge (needs 10)" in result.stdout
    html = page.read_text()
    assert html.count("<svg") >= 4
    assert "Escalation precision" in html


def test_serve_connects_to_slack_over_socket_mode_without_a_signing_secret(
    tmp_path: Path,
) -> None:
    config = tmp_path / "signoff.yaml"
    with FakeSlack() as slack:
        config.write_text(f"slack: {{api_url: '{slack.api_url}'}}\n")
        env = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_APP_TOKEN": SLACK_APP_TOKEN}
        with serve(tmp_path, config=config, env=env) as server:
            server.line_matching(r"^  slack: Socket Mode$")
            assert "slack" in server.line_matching(r"channels: (.*)").group(1)
            deadline = time.monotonic() + 10
            while slack.connections() != (1, 1):
                assert time.monotonic() < deadline, server.lines
                time.sleep(0.05)
            server.line_matching(r"signoff\.slack\.socket: A new session .* established")
        assert slack.connections() == (1, 0)  # closed on the way out
        for line in server.lines:
            assert SLACK_TOKEN not in line and SLACK_APP_TOKEN not in line
