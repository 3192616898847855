"""`signoff standing grant|list|revoke` against a running server, as an operator uses them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve import run, serve

pytestmark = pytest.mark.slow

KEY = "sk_standing_e2e_key"
CONFIG = f"""
agents:
  - id: invoice-bot
    key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
    owner: web:olga
routing:
  review_sample_rate: 0
tiers:
  - {{name: junior, sla: 15m, reviewers: [web:jan]}}
  - {{name: senior, sla: 1h, reviewers: [web:sam]}}
  - {{name: manager, sla: 4h, reviewers: [web:max]}}
"""

ACME = {
    "action": {"kind": "invoice", "summary": "Pay INV-7", "payload": {"vendor": "ACME"}},
    "confidence": 0.3,
    "amount": 120,
}


def test_grant_use_list_and_revoke(tmp_path: Path) -> None:
    config = tmp_path / "signoff.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {"SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}"}
    grant = [
        "standing", "grant", "--config", str(config), "--agent", "invoice-bot",
        "--kind", "invoice", "--ttl", "2h", "--max-uses", "2",
        "--reason", "ERP sync down",
    ]  # fmt: skip
    with serve(tmp_path, config=config, env=env) as server:
        # Refusals first: a bad condition, an agent identity, the agent's owner, a junior.
        bad = run(*grant, "--by", "web:sam", "--when", "amount <=", cwd=tmp_path, env=env)
        assert bad.returncode == 2
        assert "--when: the condition does not compile: line 1, column" in bad.stderr
        for who, why in (
            ("agent:invoice-bot", "not a reviewer identity"),
            ("web:olga", "you own agent invoice-bot"),
            ("web:jan", "does not decide medium-risk items"),
        ):
            refused = run(*grant, "--by", who, cwd=tmp_path, env=env)
            assert refused.returncode == 1 and why in refused.stderr, refused.stderr
        high = run(*grant, "--by", "web:sam", "--max-risk", "high", cwd=tmp_path, env=env)
        assert high.returncode == 1 and "--allow-high" in high.stderr

        made = run(
            *grant, "--by", "web:sam", "--when", 'action.payload.vendor == "ACME"',
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        grant_id = made.stdout.strip()
        assert grant_id.startswith("sa_")

        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            first = client.post("/v1/requests", json=ACME)
            assert first.status_code == 201, first.text
            assert first.json()["status"] == "approved"
            assert first.json()["standing_approval"] == grant_id
            other = {**ACME, "action": {**ACME["action"], "payload": {"vendor": "Globex"}}}
            assert client.post("/v1/requests", json=other).json()["status"] == "pending"
            request = client.get(f"/v1/requests/{first.json()['id']}").json()
            assert [(v["reviewer"], v["channel"]) for v in request["votes"]] == [
                ("web:sam", "standing")
            ]

        listed = run("standing", "list", "--config", str(config), "--json", cwd=tmp_path, env=env)
        (entry,) = json.loads(listed.stdout)
        assert (entry["id"], entry["uses"], entry["max_uses"]) == (grant_id, 1, 2)
        table = run("standing", "list", "--config", str(config), cwd=tmp_path, env=env).stdout
        assert grant_id in table and "1/2" in table and "when action.payload.vendor" in table

        nobody = run(
            "standing", "revoke", grant_id, "--by", "web:jan", "--config", str(config),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert nobody.returncode == 1 and "may revoke" in nobody.stderr
        revoked = run(
            "standing", "revoke", grant_id, "--by", "web:sam", "--config", str(config),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert revoked.returncode == 0 and "after 1 of 2 uses" in revoked.stdout
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            assert client.post("/v1/requests", json=ACME).json()["status"] == "pending"
        empty = run("standing", "list", "--config", str(config), cwd=tmp_path, env=env)
        assert "no active standing approvals" in empty.stdout

    exported = run("audit", "export", "--config", str(config), cwd=tmp_path, env=env).stdout
    events = [json.loads(line) for line in exported.splitlines()]
    names = [e["event"] for e in events]
    assert names.count("standing_granted") == 1 and names.count("standing_revoked") == 1
    assert run("audit", "verify", "--config", str(config), cwd=tmp_path, env=env).returncode == 0
