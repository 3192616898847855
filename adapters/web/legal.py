"""`/privacy` and `/terms`: the pages an app store's listing links to.

Microsoft Teams requires a privacy and a terms-of-use URL in every app manifest, and
`teams/manifest.json` points them here, so they must answer. They say what this server
stores and who is responsible for it; an organisation with its own policy pages can put
those addresses in the manifest instead.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["legal_router"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Signoff</title>
<link rel="stylesheet" href="/static/signoff.css">
</head><body><main class="page">
<h1>{title}</h1>
{body}
</main></body></html>
"""

_PRIVACY = """
<p>This Signoff server is run by your organisation, which decides what it is used for and is
responsible for the data it holds. Signoff is software your organisation operates; nothing
is sent to the makers of Signoff.</p>
<p>What it stores, in your organisation's database: the requests AI agents submit for
approval (the proposed action and the context the agent sends), every verdict with the
reviewer's identity (a Slack member ID, a Microsoft Entra object ID or a web inbox login),
the time and the rationale given, and an append-only audit log of these events. It stores
no message content from Slack or Teams other than the cards it posts itself.</p>
<p>Who can see it: the reviewers of each tier, the agent that submitted a request (through
its API key), and the administrators of this server. Ask your administrator how long
records are kept and how to have them corrected or removed.</p>
"""

_TERMS = """
<p>This Signoff server is provided by your organisation for reviewing actions proposed by
AI agents. Use it only as your organisation permits.</p>
<p>Your verdicts (approve, reject, modify) are recorded with your identity, the time and
your rationale, and may let an agent carry out the action you approved. Decide only on
items you are entitled to decide, and give a truthful rationale.</p>
<p>Questions about these terms go to the administrators of this server.</p>
"""

_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def legal_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/privacy", response_class=HTMLResponse)
    async def privacy() -> HTMLResponse:
        page = _PAGE.format(title="Privacy", body=_PRIVACY)
        return HTMLResponse(page, headers=_HEADERS)

    @router.get("/terms", response_class=HTMLResponse)
    async def terms() -> HTMLResponse:
        page = _PAGE.format(title="Terms of use", body=_TERMS)
        return HTMLResponse(page, headers=_HEADERS)

    return router
