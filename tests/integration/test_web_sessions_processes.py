"""Two `signoff serve` processes on one PostgreSQL: a sign-out on one replica ends the
session on the other, and neither brings it back after a restart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from adapters.web.passwords import hash_password
from tests.contract._databases import postgres_schema
from tests.support.replicas import Replica, replicas

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

COOKIE = "signoff_session"
ENV = {"SIGNOFF_SESSION_SECRET": "replica-session-secret-0123456789"}
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


def write_config(path: Path, database_url: str) -> Path:
    config = {
        "database_url": database_url,
        "agents": [],
        "tiers": [{"name": "manager", "sla": "4h", "reviewers": ["web:alice", "web:bob"]}],
        "web": {
            "reviewers": {
                name: {"password_hash": hash_password(pw)} for name, pw in PASSWORDS.items()
            }
        },
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(replica: Replica, name: str) -> str:
    """Sign `name` in on `replica`; returns the session cookie."""
    with httpx.Client(base_url=replica.url, timeout=10) as browser:
        page = browser.get("/login")
        signed = browser.post(
            "/login",
            data={"csrf": csrf(page.text), "username": name, "password": PASSWORDS[name]},
        )
        assert signed.status_code == 303, signed.text
        return str(browser.cookies[COOKIE])


def opens(replica: Replica, cookie: str) -> bool:
    response = httpx.get(f"{replica.url}/", cookies={COOKIE: cookie}, timeout=10)
    return response.status_code == 200


def sign_out(replica: Replica, cookie: str) -> None:
    with httpx.Client(base_url=replica.url, cookies={COOKIE: cookie}, timeout=10) as browser:
        home = browser.get("/")
        assert home.status_code == 200
        assert browser.post("/logout", data={"csrf": csrf(home.text)}).status_code == 303


async def test_a_sign_out_holds_on_every_replica_and_after_a_restart(tmp_path: Path) -> None:
    async with postgres_schema() as url:
        config = write_config(tmp_path / "signoff.yaml", url)
        with replicas(2, config, ENV, tmp_path) as (one, two):
            alice = sign_in(one, "alice")
            bob = sign_in(two, "bob")
            assert opens(two, alice) and opens(one, bob)

            sign_out(two, alice)

            assert not opens(one, alice) and not opens(two, alice)
            assert opens(one, bob)
        with replicas(1, config, ENV, tmp_path) as (restarted,):
            assert not opens(restarted, alice)
            assert opens(restarted, bob)
