"""`POST /api/messages`: the Bot Framework's door into Signoff, served by FastAPI.

Parse the activity, authenticate it (Bot Framework JWT, see `auth`), run it through the
adapter (`process_activity(auth, activity, bot.on_turn)`) and answer with the invoke
response the bot left, if any. A request without a valid token gets 401 before any bot
code runs, so it can change nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.schema import Activity
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from adapters.teams.auth import AuthUnavailable, Unauthorized
from adapters.teams.bot import TeamsBot
from adapters.teams.channel import TeamsChannel

log = logging.getLogger("signoff.teams")

PATH = "/api/messages"

Endpoint = Callable[[Request], Awaitable[Response]]


def _problem(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def messages_endpoint(channel: TeamsChannel, bot: TeamsBot) -> Endpoint:
    """The handler for `POST /api/messages` using `channel`'s adapter and auth."""

    async def messages(request: Request) -> Response:
        auth_header = request.headers.get("authorization", "")
        if channel.auth.verify and not auth_header:
            return _problem(401, "unauthorized", "missing Bot Framework bearer token")
        if "json" not in request.headers.get("content-type", ""):
            return _problem(415, "unsupported_media_type", "send the activity as JSON")
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "bad_request", "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return _problem(400, "bad_request", "the body is not an activity (no type)")
        try:
            activity = Activity().deserialize(body)
        except Exception as exc:  # msrest raises DeserializationError and friends
            return _problem(400, "bad_request", f"the activity cannot be read: {exc}")
        try:
            authenticated = await channel.auth.authenticate(activity, auth_header)
        except Unauthorized as exc:
            log.warning("Teams request refused: %s", exc)
            return _problem(401, "unauthorized", "invalid Bot Framework token")
        except AuthUnavailable as exc:
            log.error("%s", exc)
            return _problem(503, "unavailable", "cannot check the token right now")
        invoke = await channel.adapter.process_activity(authenticated, activity, bot.on_turn)
        if invoke is None:
            return Response(status_code=200)
        return JSONResponse(_json(invoke.body), status_code=int(invoke.status))

    return messages


def _json(body: Any) -> Any:
    if body is None or isinstance(body, dict | list | str | int | float | bool):
        return body
    return serializer_helper(body)
