"""A reviewer in the web inbox of a running `signoff serve`, over real HTTP: sign in with a
password, open the item, vote with its CSRF token."""

from __future__ import annotations

import re

import httpx


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def web_vote(
    url: str,
    request_id: str,
    verdict: str,
    rationale: str,
    *,
    name: str,
    password: str,
    **fields: str,
) -> None:
    with httpx.Client(base_url=url) as browser:
        page = browser.get("/login")
        signed_in = browser.post(
            "/login",
            data={"csrf": csrf(page.text), "username": name, "password": password},
        )
        assert signed_in.status_code == 303, signed_in.text
        item = browser.get(f"/requests/{request_id}")
        assert item.status_code == 200
        voted = browser.post(
            f"/requests/{request_id}/vote",
            data={"csrf": csrf(item.text), "verdict": verdict, "rationale": rationale, **fields},
        )
        assert voted.status_code in (200, 303), voted.text
