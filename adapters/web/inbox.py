"""The web inbox (CONTRACT section 8): login, inbox, item pages, dashboard and audit view.

Server-rendered Jinja2 pages over the `ReviewService` and `Repository` ports. Votes go
through the same `ReviewService.vote` as Slack and Teams, so the rules and refusals are the
same; this module only translates forms to calls and results to HTML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapters.web._base import (
    BUILTIN_LOGIN,
    CHANNEL,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    STATIC_DIR,
    WebLogin,
    WebSettings,
)
from adapters.web._item_pages import ItemPages
from adapters.web._operator_pages import OperatorPages, charts
from adapters.web._queue_pages import QueuePages
from adapters.web._signin_pages import SignInPages
from adapters.web.oidc import CALLBACK_PATH, START_PATH

__all__ = [
    "BUILTIN_LOGIN",
    "CHANNEL",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "STATIC_DIR",
    "WebInbox",
    "WebLogin",
    "WebSettings",
    "charts",
    "web_router",
]


class WebInbox(SignInPages, QueuePages, ItemPages, OperatorPages):
    """The web inbox: every page group over one set of settings, sessions and ports."""


_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/login", "GET", "login_page"),
    ("/login", "POST", "login_submit"),
    (START_PATH, "GET", "oidc_start"),
    (CALLBACK_PATH, "GET", "oidc_callback"),
    ("/login/token/{token}", "GET", "token_page"),
    ("/login/token/{token}", "POST", "token_submit"),
    ("/logout", "POST", "logout"),
    ("/", "GET", "inbox_page"),
    ("/inbox/rows", "GET", "inbox_rows"),
    ("/requests/{request_id}", "GET", "request_page"),
    ("/requests/{request_id}/live", "GET", "request_live"),
    ("/requests/{request_id}/vote", "POST", "vote_submit"),
    ("/batch", "POST", "batch_submit"),
    ("/requests/{request_id}/allow-similar", "POST", "allow_similar"),
    ("/standing/{grant_id}/revoke", "POST", "revoke_standing"),
    ("/dashboard", "GET", "dashboard_page"),
    ("/deliveries/{delivery_id}/retry", "POST", "retry_delivery"),
    ("/agents/{agent_id}/stop", "POST", "stop_agent"),
    ("/agents/{agent_id}/start", "POST", "start_agent"),
    ("/sessions/{session_id}/revoke", "POST", "revoke_session"),
    ("/audit", "GET", "audit_page"),
    ("/audit/export", "GET", "audit_download"),
)

Page = Callable[..., Awaitable[Response]]


def web_router(resolve: Callable[[Request], WebInbox]) -> APIRouter:
    """The inbox's routes, each asking `resolve` for the inbox that serves the request.

    Resolving per request lets an app be built before its services exist (they are made in
    its lifespan). The routes stay out of the agent API's OpenAPI schema.
    """
    router = APIRouter(include_in_schema=False)

    def endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            page: Page = getattr(resolve(request), name)
            return await page(request, **request.path_params)

        serve.__name__ = f"web_{name}"
        return serve

    for path, method, name in _ROUTES:
        router.add_api_route(path, endpoint(name), methods=[method], name=f"web_{name}")
    return router
