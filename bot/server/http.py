"""The agent HTTP API of CONTRACT section 5 (FastAPI)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core.domain import OutboxKind, OutboxStatus, Status, isoformat
from bot.core.errors import (
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    SignoffError,
    StorageError,
)
from bot.core.jsondepth import MAX_DEPTH, text_depth
from bot.engine.machine import body_digest
from bot.engine.wire import RequestList, RequestOut, SubmitOut, WebhookOut, request_json
from bot.server._http_models import AgentOut as AgentOut
from bot.server._http_models import AgentStateOut as AgentStateOut
from bot.server._http_models import DeliveryList as DeliveryList
from bot.server._http_models import DeliveryOut as DeliveryOut
from bot.server._http_models import ErrorOut as ErrorOut
from bot.server._http_models import FieldErrorOut as FieldErrorOut
from bot.server._http_models import InvalidBodyOut as InvalidBodyOut
from bot.server._http_models import OutcomeIn as OutcomeIn
from bot.server._http_models import StopIn as StopIn
from bot.server._http_models import SubmitIn as SubmitIn
from bot.server.services import Services
from signoff_client.canonical import tolerating_depth

MAX_BODY = 256 * 1024

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key"},
    404: {"model": ErrorOut, "description": "Not found for this agent"},
    413: {"model": ErrorOut, "description": "Body over 256 KiB"},
    422: {"model": InvalidBodyOut, "description": "Invalid body or parameters"},
    503: {"model": ErrorOut, "description": "Database unavailable; retry"},
}

# `error` codes for the HTTP errors Starlette raises itself (unknown path, wrong method).
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}


def error(
    status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


# -- auth -----------------------------------------------------------------------------------


class Unauthorized(SignoffError):
    pass


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def services(request: Request) -> Services:
    """The app's services. A coroutine on purpose: FastAPI runs a plain function dependency
    in its thread pool, a thread hand-off on every request for an attribute read."""
    return _services(request)


async def current_agent(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The agent whose API key is in `Authorization: Bearer ...`; 401 otherwise."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("missing bearer API key")
    key = authorization[7:].strip()
    if not key:
        raise Unauthorized("missing bearer API key")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    agent = await _services(request).agent_for_key(digest)
    if agent is None:
        raise Unauthorized("unknown or revoked API key")
    return agent


Agent = Annotated[str, Depends(current_agent)]
Svc = Annotated[Services, Depends(services)]


# -- body size ------------------------------------------------------------------------------


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


class BodyLimit:
    """413 for bodies over the limit, by Content-Length or by counting a streamed body."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _is_json(scope) and text_depth(body) > MAX_DEPTH:
            # Refused before anything parses it: a text this deep breaks parsers and every
            # later read of what was stored (issue: 500s on GET after a deep payload).
            response = error(
                422,
                "invalid_body",
                [
                    {
                        "loc": ["body"],
                        "msg": f"JSON nesting deeper than the limit of {MAX_DEPTH} levels",
                        "type": "json_too_deep",
                    }
                ],
            )
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(
            413, "payload_too_large", f"request bodies are limited to {self.limit} bytes"
        )
        await response(scope, receive, send)


# -- routes ---------------------------------------------------------------------------------


class _StoredJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return tolerating_depth(lambda: JSONResponse.render(self, content))


def _stored(body: Any) -> JSONResponse:
    """Stored data, answered as the JSON it already is.

    The response models document the shape; re-validating and re-encoding stored values
    walks them recursively, which fails (500, on every read) for a value nested deeper
    than the interpreter allows, such as one accepted before inputs were depth-limited.
    """
    return _StoredJSONResponse(body)


router = APIRouter(responses=_ERRORS)


@router.post(
    "/v1/requests",
    status_code=201,
    response_model=SubmitOut,
    responses={
        200: {
            "model": SubmitOut,
            "description": "Replay of an earlier submit (same Idempotency-Key)",
        },
        409: {"model": ErrorOut, "description": "Idempotency-Key reused with another body"},
    },
    tags=["requests"],
)
async def submit(
    body: SubmitIn,
    request: Request,
    agent: Agent,
    svc: Svc,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Ask whether the agent may act; routes by risk, then confidence."""
    digest = body_digest(await request.body()) if idempotency_key is not None else None
    result = await svc.engine.submit(
        agent, body, idempotency_key=idempotency_key, body_sha256=digest
    )
    return JSONResponse(dict(result.response), status_code=201 if result.created else 200)


@router.get("/v1/requests", response_model=RequestList, tags=["requests"])
async def list_requests(
    agent: Agent,
    svc: Svc,
    status: Annotated[
        Literal["pending", "approved", "modified", "rejected", "expired", "cancelled", "reversed"]
        | None,
        Query(),
    ] = None,
    agent_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    """This agent's requests, oldest first, keyset-paginated with `cursor`."""
    if agent_id is not None and agent_id != agent:
        return {"items": [], "next_cursor": None}
    page = await svc.repo.list_requests(agent_id=agent, status=status, limit=limit, cursor=cursor)
    # Attention checks carry a real agent's name but are never the agent's business.
    items = [request_json(r) for r in page.items if not r.canary]
    return _stored({"items": items, "next_cursor": page.next_cursor})


@router.get("/v1/requests/{request_id}", response_model=RequestOut, tags=["requests"])
async def get_request(request_id: str, agent: Agent, svc: Svc) -> Any:
    return _stored(request_json(await svc.engine.get_for_agent(agent, request_id)))


@router.get("/v1/requests/{request_id}/wait", response_model=RequestOut, tags=["requests"])
async def wait_request(
    request_id: str,
    agent: Agent,
    svc: Svc,
    timeout: Annotated[float, Query(ge=0, allow_inf_nan=False)] = 30.0,  # noqa: ASYNC109
) -> Any:
    """Long-poll until the request is no longer pending (at most 60 s); always 200."""
    timeout = min(timeout, 60.0) if math.isfinite(timeout) else 60.0
    loop_time = svc.monotonic
    deadline = loop_time() + timeout
    request = await svc.engine.get_for_agent(agent, request_id)
    while request.status is Status.PENDING:
        left = deadline - loop_time()
        if left <= 0:
            break
        await svc.waiters.wait(request_id, min(left, svc.wait_poll_interval))
        request = await svc.engine.get_for_agent(agent, request_id)
    return _stored(request_json(request))


@router.post(
    "/v1/requests/{request_id}/cancel",
    response_model=RequestOut,
    responses={409: {"model": ErrorOut, "description": "Not pending"}},
    tags=["requests"],
)
async def cancel_request(request_id: str, agent: Agent, svc: Svc) -> Any:
    return _stored(request_json(await svc.engine.cancel(agent, request_id)))


@router.post("/v1/requests/{request_id}/outcome", response_model=RequestOut, tags=["requests"])
async def report_outcome(request_id: str, body: OutcomeIn, agent: Agent, svc: Svc) -> Any:
    """Ground truth: was the final action correct? Feeds precision, recall and task success."""
    updated = await svc.engine.record_outcome(agent, request_id, body.correct, body.note)
    return _stored(request_json(updated))


async def _set_stopped(agent_id: str, agent: str, svc: Services, stopped: bool, reason: str) -> Any:
    if agent_id != agent:
        raise NotFound(f"no agent {agent_id}")
    state = await svc.engine.set_stopped(
        agent_id, stopped, actor=f"agent:{agent}", reason=reason, channel="api"
    )
    return {
        "agent_id": state.agent_id,
        "stopped": state.stopped,
        "reason": state.reason,
        "by": state.by,
        "at": isoformat(state.at),
    }


@router.post("/v1/agents/{agent_id}/stop", response_model=AgentStateOut, tags=["agents"])
async def stop_agent(agent_id: str, agent: Agent, svc: Svc, body: StopIn | None = None) -> Any:
    """The stop button: every new request of this agent is rejected until it is started."""
    return await _set_stopped(agent_id, agent, svc, True, body.reason if body else "")


@router.post(
    "/v1/agents/{agent_id}/start",
    response_model=AgentStateOut,
    responses={403: {"model": ErrorOut, "description": "Agent keys may not start agents"}},
    tags=["agents"],
)
async def start_agent(agent_id: str, agent: Agent, svc: Svc, body: StopIn | None = None) -> Any:
    """Refused for agent keys: a stopped agent never restarts itself. A top-tier reviewer
    starts it (Slack, Teams, web inbox) or `signoff agents start` on the server host."""
    if agent_id != agent:
        raise NotFound(f"no agent {agent_id}")
    raise NotAllowed(
        "forbidden",
        "an agent's key may stop its agent but never start it; a reviewer of the top tier "
        "starts it (Slack, Teams, the web inbox) or `signoff agents start` on the server",
    )


@router.get("/v1/deliveries", response_model=DeliveryList, tags=["deliveries"])
async def list_deliveries(
    agent: Agent,
    svc: Svc,
    status: Annotated[Literal["pending", "done", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """This agent's webhook deliveries (e.g. `?status=dead`)."""
    rows = await svc.repo.list_outbox(
        kind=OutboxKind.WEBHOOK,
        status=OutboxStatus(status) if status else None,
        agent_id=agent,
        limit=limit,
    )
    return {"items": [m.to_json() for m in rows]}


@router.post(
    "/v1/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    responses={409: {"model": ErrorOut, "description": "Delivery is not dead"}},
    tags=["deliveries"],
)
async def retry_delivery(delivery_id: str, agent: Agent, svc: Svc) -> Any:
    """Send a dead delivery again, with its retries reset and the same webhook-id."""
    message = await svc.repo.get_outbox(delivery_id)
    if (
        message is None
        or message.kind is not OutboxKind.WEBHOOK
        or message.payload.get("agent_id") != agent
    ):
        raise NotFound(f"no delivery {delivery_id}")
    again = await svc.requeue_delivery(message, actor=f"agent:{agent}")
    if again is None:
        raise Conflict("not_dead", f"delivery {delivery_id} is {message.status.value}, not dead")
    return again.to_json()


@router.get("/v1/agents/{agent_id}", response_model=AgentOut, tags=["agents"])
async def get_agent(agent_id: str, agent: Agent, svc: Svc) -> Any:
    """The key's own agent and whether it is stopped; any other agent is 404, so a process
    handed a key (the MCP gateway) can check that the key is the agent it was told to be."""
    if agent_id != agent:
        raise NotFound(f"no agent {agent_id}")
    state = await svc.repo.agent_state(agent_id)
    return {
        "agent_id": agent_id,
        "stopped": bool(state and state.stopped),
        "reason": state.reason if state else "",
    }


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
async def readyz(svc: Svc) -> Any:
    """The database answers."""
    await svc.repo.ping()
    return {"status": "ready"}


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
async def metrics(svc: Svc) -> Response:
    """Prometheus text exposition."""
    body = await svc.render_metrics()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# -- error registry -------------------------------------------------------------------------


def document_webhooks(app: FastAPI) -> None:
    """List the resume webhook in the OpenAPI document (its `webhooks` section), so that
    agents generating code from /openapi.json get the body they will receive."""

    @app.webhooks.post("request.resolved")
    def request_resolved(body: WebhookOut) -> None:
        """A request reached a final status. POSTed to the request's `callback_url` (else
        the agent's), signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
        `webhook-signature`); answer 2xx, or it is retried; 410 stops it."""

    @app.webhooks.post("request.reversed")
    def request_reversed(body: WebhookOut) -> None:
        """A reviewer reversed what the agent already did: undo it."""


def install_error_handlers(app: FastAPI) -> None:
    """Map Signoff's exceptions to the contract's JSON errors in one place."""

    async def unauthorized(_: Request, exc: Exception) -> Response:
        return error(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})

    async def not_found(_: Request, exc: Exception) -> Response:
        return error(404, "not_found", str(exc))

    async def conflict(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Conflict)
        return error(409, exc.code, exc.message)

    async def not_allowed(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAllowed)
        return error(403, exc.code, exc.message)

    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidInput)
        return error(
            422,
            f"invalid_{exc.field}",
            [{"loc": ["body", exc.field], "msg": exc.problem, "type": "value_error"}],
        )

    async def unavailable(_: Request, exc: Exception) -> Response:
        return error(
            503,
            "unavailable",
            "the database is unavailable; retry (with the same Idempotency-Key)",
            {"Retry-After": "1"},
        )

    async def bad_body(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI answers 400 for an unparsable optional body; the contract says 422.
            return error(
                422,
                "invalid_body",
                [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
            )
        if exc.status_code < 400 or exc.status_code in (204, 304):
            return await http_exception_handler(request, exc)
        # Unknown paths and methods answer in the same shape as every other error.
        return error(
            exc.status_code,
            _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
            exc.detail,
            dict(exc.headers) if exc.headers else None,
        )

    async def invalid_body(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # ASCII-escaped, so an input holding an unpaired surrogate can be echoed back.
        body = json.dumps(
            {"error": "invalid_body", "detail": jsonable_encoder(exc.errors())}, ensure_ascii=True
        )
        return Response(body, status_code=422, media_type="application/json")

    async def internal(_: Request, exc: Exception) -> Response:
        # Starlette logs the traceback; the agent gets the same shape as every other error.
        return error(500, "internal_error", "Signoff failed to handle this call; it is logged")

    app.add_exception_handler(Exception, internal)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(StarletteHTTPException, bad_body)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(NotAllowed, not_allowed)
    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(StorageError, unavailable)
