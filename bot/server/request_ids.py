"""ASGI middleware that names the approval request a call is about in its log lines."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.core.logs import request_context

_REQUEST_IN_PATH = re.compile(r"/(req_[A-Za-z0-9_-]{1,100})(?:/|$)")


class RequestIdFromPath:
    """ASGI middleware: while a call names an approval request in its path
    (`/v1/requests/req_...`, `/requests/req_...`), its log lines carry that id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _REQUEST_IN_PATH.search(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        with request_context(found.group(1)):
            await self.app(scope, receive, send)
