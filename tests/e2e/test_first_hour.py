"""A new user's first hour, as subprocesses: a quiet console with the banner last, sign-in
links for a running server, a demo key that survives restarts, `init`, `policy check` with
no file, and commands that stop quietly when their reader goes away."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve import SIGNOFF, Server, run, serve

pytestmark = pytest.mark.slow


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@contextmanager
def sign_in(server: Server, link: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        path = link.removeprefix(server.url)
        page = client.get(path)
        assert page.status_code == 200 and "Sign in as" in page.text, page.text
        signed = client.post(path, data={"csrf": csrf(page.text)})
        assert signed.status_code == 303, signed.text
        yield client


def test_the_console_is_quiet_and_the_banner_comes_last(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        server.line_matching(r"login: http://")
        time.sleep(2.5)  # the scheduler has run its jobs a few times by now
        lines = list(server.lines)
    banner = lines.index(next(line for line in lines if "is running at http://" in line))
    assert [line.strip().split(":")[0] for line in lines[banner + 1 :]] == [
        "database",
        "channels",
        "audit key",
        "(keep that file",
        "agent",
        "api key",
        "(kept in signoff.demo-key; `signoff keys new demo` replaces it)",
        "login",
        "(one-time; `signoff web login-link` prints another)",
    ]
    assert not any("apscheduler" in line or "alembic" in line for line in lines), lines


def test_log_level_and_json_lines(tmp_path: Path) -> None:
    with serve(
        tmp_path, extra=["--log-format", "json"], env={"SIGNOFF_LOG_LEVEL": "debug"}
    ) as server:
        server.line_matching(r'"logger": "apscheduler')
        lines = list(server.lines)
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(logged[0])
    assert any(line["logger"].startswith("alembic") for line in logged)
    # Everything else on the console is the banner.
    assert all(line.startswith(("{", "Signoff", " ")) for line in lines), lines
    refused = run("serve", "--log-level", "loud", cwd=tmp_path)
    assert refused.returncode == 2 and "--log-level" in refused.stderr
    env_refused = run("policy", "check", cwd=tmp_path, env={"SIGNOFF_LOG_LEVEL": "loud"})
    assert env_refused.returncode == 2 and "unknown log level 'loud'" in env_refused.stderr


def test_a_login_link_for_the_running_server_after_signing_out(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        first = server.line_matching(r"login: (http://\S+)").group(1)
        with sign_in(server, first) as browser:
            home = browser.get("/")
            assert "(web:admin)" in home.text
            out = browser.post("/logout", data={"csrf": csrf(home.text)})
            assert out.status_code == 303
            assert browser.get("/").status_code == 303  # signed out: back to /login
        # No restart: another process issues a link the running server honours.
        port = server.url.rsplit(":", 1)[1]
        issued = run("web", "login-link", cwd=tmp_path, env={"SIGNOFF_PORT": port})
        assert issued.returncode == 0, issued.stderr
        link = issued.stdout.strip()
        assert link.startswith(f"{server.url}/login/token/")
        with sign_in(server, link) as second_browser:
            assert "(web:admin)" in second_browser.get("/").text
        assert httpx.get(link, timeout=5).status_code == 410  # used up
        unknown = run("web", "login-link", "--reviewer", "bob", cwd=tmp_path)
        assert unknown.returncode == 2 and "no web reviewer 'bob'" in unknown.stderr


def test_the_demo_key_survives_restarts_until_rotated(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        key = server.api_key
        rotated = run("keys", "new", "demo", cwd=tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        new_key = re.search(r"api_key: (sk_\S+)", rotated.stdout)
        assert new_key is not None
        # The running server takes the new key at once and refuses the old one.
        for candidate, status in ((key, 401), (new_key.group(1), 200)):
            answer = httpx.get(
                f"{server.url}/v1/requests",
                headers={"Authorization": f"Bearer {candidate}"},
                timeout=5,
            )
            assert answer.status_code == status
    kept = tmp_path / "signoff.demo-key"
    assert kept.read_text().strip() == new_key.group(1)
    assert kept.stat().st_mode & 0o777 == 0o600
    with serve(tmp_path) as again:
        assert again.api_key == new_key.group(1)


def test_init_writes_a_config_that_checks_clean_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    written = run("init", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    config = tmp_path / "signoff.yaml"
    text = config.read_text()
    again = run("init", cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert config.read_text() == text
    checked = run("policy", "check", "signoff.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("signoff.yaml: valid")
    default = run("policy", "check", cwd=tmp_path)
    assert default.stdout.startswith("built-in default (no config file): valid")
    # The written file routes every sample exactly as the built-in default does.
    assert default.stdout.splitlines()[1:] == checked.stdout.splitlines()[1:]
    from_env = run("policy", "check", cwd=tmp_path, env={"SIGNOFF_CONFIG": "signoff.yaml"})
    assert from_env.stdout.startswith("signoff.yaml: valid")
    elsewhere = run("init", "conf/prod.yaml", cwd=tmp_path)
    assert elsewhere.returncode == 1 and "cannot write conf/prod.yaml" in elsewhere.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["policy", "check"],
        ["keys", "new", "invoice-bot"],
        ["audit", "verify"],
        ["report"],
        ["--help"],
    ],
)
def test_commands_stop_quietly_when_the_reader_goes_away(
    tmp_path: Path, command: list[str]
) -> None:
    run("db", "upgrade", cwd=tmp_path)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (`| head -0`)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    result = subprocess.run(
        [SIGNOFF, *command],
        cwd=tmp_path,
        env=env,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(write)
    assert result.stderr == ""
    # argparse swallows the error of its own help output; everything else reports SIGPIPE.
    assert result.returncode == (0 if command == ["--help"] else 141)
