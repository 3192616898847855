"""Every page the Teams app manifest links to answers on Signoff's own server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from bot.server.app import create_app
from bot.server.config import parse_config

MANIFEST = Path(__file__).parents[2] / "teams" / "manifest.json"


async def test_the_teams_manifest_links_only_to_pages_signoff_serves() -> None:
    developer = json.loads(MANIFEST.read_text(encoding="utf-8"))["developer"]
    paths = [
        re.sub(r"^\{\{SIGNOFF_PUBLIC_URL\}\}", "", developer[key]) or "/"
        for key in ("privacyUrl", "termsOfUseUrl")
    ]
    assert paths == ["/privacy", "/terms"]
    app = create_app(parse_config({}, {}))  # no services needed: the pages are static
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as client:
        for path in paths:
            page = await client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            assert "your organisation" in page.text
            assert page.headers["x-content-type-options"] == "nosniff"
