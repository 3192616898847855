"""The agent's side of Signoff: a client for the agent HTTP API (CONTRACT section 5) and a
verifier for the resume webhook (section 7).

Agents import this module alone; it needs httpx, pydantic and standardwebhooks, never the
server. `SignoffClient` (blocking) and `AsyncSignoffClient` share one core: every operation
is a plan, a generator that yields the calls to make and is handed back their responses, so
the two clients only differ in how they send and how they sleep between retries::

    with SignoffClient("http://127.0.0.1:8000", api_key) as signoff:
        action = {"kind": "payment", "summary": "Pay INV-123", "payload": {"invoice": "INV-123"}}
        answer = signoff.request_approval(action, 0.62, thread_id="lg-42", amount=5000)
        if answer.status == "pending":
            final = signoff.wait(answer.id, timeout=3600)

Retries: 503 answers and transport errors (connection refused, timeouts) are retried with
exponential backoff (honouring `Retry-After`), at most `max_retries` times. That is safe for
every call: a submit carries an `Idempotency-Key` (the same on every retry), reads are
reads, and a repeated outcome report overwrites itself.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError
from standardwebhooks.webhooks import WebhookVerificationError as _LibraryVerificationError

from signoff_client._errors import ERRORS_BY_STATUS
from signoff_client._errors import AuthenticationError as AuthenticationError
from signoff_client._errors import ConflictError as ConflictError
from signoff_client._errors import InvalidRequest as InvalidRequest
from signoff_client._errors import RequestNotFound as RequestNotFound
from signoff_client._errors import ServiceUnavailable as ServiceUnavailable
from signoff_client._errors import SignoffAPIError as SignoffAPIError
from signoff_client._errors import WebhookVerificationError as WebhookVerificationError
from signoff_client._models import Action as Action
from signoff_client._models import AgentState as AgentState
from signoff_client._models import Lane as Lane
from signoff_client._models import RequestDetail as RequestDetail
from signoff_client._models import ResumeData as ResumeData
from signoff_client._models import ResumeEvent as ResumeEvent
from signoff_client._models import Risk as Risk
from signoff_client._models import RoutingAnswer as RoutingAnswer
from signoff_client._models import Status as Status
from signoff_client._models import TierMove as TierMove
from signoff_client._models import Vote as Vote
from signoff_client.canonical import canonical_json, sha256_hex

LONG_POLL_MAX = 60.0
"""The server holds one `/wait` call at most this long (CONTRACT section 5)."""


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> ResumeEvent:
    """Check a resume webhook's Standard Webhooks signature and read it.

    `headers` may be any mapping (names are matched case-insensitively); `body` must be the
    raw bytes as received. Besides the signature and the 5-minute timestamp window, checks
    that `action_sha256` is the hash of the action it carries, so the agent executes exactly
    what the humans approved.

    Raises WebhookVerificationError.
    """
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except (_LibraryVerificationError, EmptyWebhookSecretError, ValueError, RuntimeError) as exc:
        # binascii.Error (a bad secret or signature) is a ValueError too.
        raise WebhookVerificationError(f"webhook signature rejected: {exc}") from exc
    try:
        event = ResumeEvent.model_validate_json(body)
    except PydanticValidationError as exc:
        raise WebhookVerificationError(f"webhook body is not a Signoff event: {exc}") from exc
    if event.data.current_action.sha256 != event.data.action_sha256:
        raise WebhookVerificationError("action_sha256 does not match the action in the webhook")
    webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
    return event.model_copy(update={"webhook_id": webhook_id})


def derive_idempotency_key(thread_id: str, action: Mapping[str, Any]) -> str:
    """The key `request_approval` derives from a thread and an action.

    The same thread asking about the same action again gets the original answer instead of a
    second request; pass `idempotency_key=` to ask anew.
    """
    return "sgn_" + sha256_hex(canonical_json({"thread_id": thread_id, "action": action}))


def _action_json(action: Action | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(action, Action):
        return action.model_dump()
    return {
        "kind": action["kind"],
        "summary": action["summary"],
        "payload": dict(action.get("payload") or {}),
    }


# -- the shared core -------------------------------------------------------------------------

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")


@dataclass(frozen=True)
class _Call:
    """One HTTP call a plan asks for; each client builds it with its own httpx client."""

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None
    params: Mapping[str, Any] | None = None
    timeout: float = 10.0

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.url,
            json=self.json,
            params=self.params,
            headers=self.headers,
            timeout=self.timeout,
        )


Plan = Generator[_Call, httpx.Response, T]


class _Core:
    """Builds requests, reads responses and decides retries; performs no I/O itself."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {
            "authorization": f"Bearer {api_key}",
            "accept": "application/json",
            "user-agent": "signoff-client/1",
        }
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rng = random.Random()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> _Call:
        return _Call(
            method,
            self.base_url + path,
            {**self.headers, **(headers or {})},
            json=json,
            params=params,
            timeout=timeout or self.timeout,
        )

    def retry_delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retry `attempt` + 1, or None to stop (and answer/raise).

        `response` is None after a transport error. Only 503 and transport errors retry.
        """
        if response is not None and response.status_code != 503:
            return None
        if attempt > self.max_retries:
            return None
        delay = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        delay *= self.rng.uniform(0.8, 1.2)
        if response is not None:
            hinted = _seconds(response.headers.get("retry-after"))
            if hinted is not None:
                delay = max(delay, min(hinted, self.max_backoff))
        return delay

    def unavailable(self, call: _Call, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{call.method} {call.url} failed after {self.max_retries} retries: "
            f"{type(exc).__name__}: {exc}"
        )

    @staticmethod
    def read(response: httpx.Response, model: type[M]) -> M:
        """The response as `model`; raises the SignoffAPIError matching its status."""
        if response.is_success:
            return model.model_validate_json(response.content)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        error = body.get("error") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else body
        kind = ERRORS_BY_STATUS.get(response.status_code, SignoffAPIError)
        method, url = response.request.method, response.request.url
        raise kind(
            f"{method} {url.path} answered {response.status_code}: {error or detail!r}",
            status_code=response.status_code,
            error=error,
            detail=detail,
            body=body,
        )

    # -- plans: one per operation ----------------------------------------------------------

    def request_approval(
        self,
        action: Action | Mapping[str, Any],
        confidence: float,
        *,
        thread_id: str | None = None,
        amount: float | None = None,
        currency: str | None = None,
        reversible: bool | None = None,
        domain: str | None = None,
        sentiment: float | None = None,
        requested_by: str | None = None,
        callback_url: str | None = None,
        labels: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        cost: float | None = None,
        question: str | None = None,
        response_schema: Mapping[str, Any] | None = None,
        reject_options: Sequence[str] | None = None,
    ) -> Plan[RoutingAnswer]:
        """Ask whether the agent may act (`POST /v1/requests`).

        `action` is `{"kind", "summary", "payload"}` (or an `Action`). Fields left None take
        the server's defaults. `question` asks the reviewer something; their answer (checked
        against the JSON Schema `response_schema`, when given) arrives as `response`;
        `reject_options` are the reasons a reviewer may pick when rejecting. The
        `Idempotency-Key` is `idempotency_key` if given, else derived from `thread_id` and the
        action (see `derive_idempotency_key`), else random; it is the same on every retry, so
        a retry never creates a second request.

        Returns the routing answer: `approved` (proceed), `pending` (wait for a verdict:
        `wait()` or the resume webhook) or `rejected` (the agent is stopped).
        Raises AuthenticationError, ConflictError (key reused with another body),
        InvalidRequest, ServiceUnavailable, SignoffAPIError.
        """
        action_json = _action_json(action)
        optional = {
            "thread_id": thread_id,
            "amount": amount,
            "currency": currency,
            "reversible": reversible,
            "domain": domain,
            "sentiment": sentiment,
            "requested_by": requested_by,
            "callback_url": callback_url,
            "labels": dict(labels) if labels is not None else None,
            "context": dict(context) if context is not None else None,
            "cost": cost,
            "question": question,
            "response_schema": dict(response_schema) if response_schema is not None else None,
            "reject_options": list(reject_options) if reject_options is not None else None,
        }
        body = {
            "action": action_json,
            "confidence": confidence,
            **{k: v for k, v in optional.items() if v is not None},
        }
        if idempotency_key is None:
            idempotency_key = (
                derive_idempotency_key(thread_id, action_json)
                if thread_id
                else f"sgn_{uuid.uuid4().hex}"
            )
        response = yield self.request(
            "POST", "/v1/requests", json=body, headers={"idempotency-key": idempotency_key}
        )
        return self.read(response, RoutingAnswer)

    def get(self, request_id: str) -> Plan[RequestDetail]:
        """The request now: status, votes, modified action, tier history.

        Raises RequestNotFound, AuthenticationError, ServiceUnavailable, SignoffAPIError.
        """
        response = yield self.request("GET", f"/v1/requests/{_segment(request_id)}")
        return self.read(response, RequestDetail)

    def wait(self, request_id: str, timeout: float | None = 60.0) -> Plan[RequestDetail]:
        """Long-poll until the request is decided or `timeout` seconds pass (None: forever).

        Each server call holds at most 60 s; this repeats them up to `timeout`. Returns the
        request either way: check `.status` (still `pending` on timeout).
        Raises RequestNotFound, AuthenticationError, ServiceUnavailable, SignoffAPIError.
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        path = f"/v1/requests/{_segment(request_id)}/wait"
        while True:
            left = LONG_POLL_MAX if deadline is None else max(deadline - time.monotonic(), 0.0)
            hold = min(left, LONG_POLL_MAX)
            response = yield self.request(
                "GET", path, params={"timeout": f"{hold:.3f}"}, timeout=hold + self.timeout
            )
            detail = self.read(response, RequestDetail)
            if detail.is_final or (deadline is not None and time.monotonic() >= deadline):
                return detail

    def ask(
        self,
        question: str,
        *,
        response_schema: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        thread_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        kind: str = "question",
        idempotency_key: str | None = None,
    ) -> Plan[RequestDetail]:
        """A person as a tool (HumanLayer's human-as-tool): ask `question`, wait for the answer.

        The request is a `kind` action at confidence 0, so routing always puts it before a
        person; `response_schema` (JSON Schema) says what shape the answer must have.
        Returns the request when it ends or `timeout` passes (None: wait as long as it
        takes): `.response` is the answer when `.status` is `approved`; a reject, expiry or
        cancel carries no answer. Raises like `request_approval` and `wait`.
        """
        summary = question if len(question) <= 200 else question[:199] + "…"
        answer = yield from self.request_approval(
            {"kind": kind, "summary": summary, "payload": {"question": question}},
            0.0,
            thread_id=thread_id,
            context=context,
            question=question,
            response_schema=response_schema,
            idempotency_key=idempotency_key,
        )
        return (yield from self.wait(answer.id, timeout))

    def agent(self, agent_id: str) -> Plan[AgentState]:
        """The key's own agent: raises RequestNotFound for any other agent id, so a process
        handed a key can check that it belongs to the agent it was told it is.

        Raises RequestNotFound, AuthenticationError, ServiceUnavailable, SignoffAPIError.
        """
        response = yield self.request("GET", f"/v1/agents/{_segment(agent_id)}")
        return self.read(response, AgentState)

    def cancel(self, request_id: str) -> Plan[RequestDetail]:
        """Withdraw a pending request (it ends `cancelled`; the resume webhook still fires).

        Raises ConflictError when it is no longer pending, RequestNotFound, SignoffAPIError.
        """
        response = yield self.request("POST", f"/v1/requests/{_segment(request_id)}/cancel")
        return self.read(response, RequestDetail)

    def report_outcome(
        self, request_id: str, correct: bool, note: str | None = None
    ) -> Plan[RequestDetail]:
        """Ground truth after the fact: was the final action correct? Feeds the metrics.

        Raises RequestNotFound, InvalidRequest, SignoffAPIError.
        """
        response = yield self.request(
            "POST",
            f"/v1/requests/{_segment(request_id)}/outcome",
            json={"correct": correct, "note": note},
        )
        return self.read(response, RequestDetail)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


# -- the two clients: how to send, how to sleep ---------------------------------------------


def _sync(plan: Callable[Concatenate[_Core, P], Plan[T]]) -> Callable[Concatenate[Any, P], T]:
    @functools.wraps(plan)
    def method(self: SignoffClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(plan(self._core, *args, **kwargs))

    return method


def _async(
    plan: Callable[Concatenate[_Core, P], Plan[T]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    @functools.wraps(plan)
    async def method(self: AsyncSignoffClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(plan(self._core, *args, **kwargs))

    return method


class SignoffClient:
    """Blocking client (httpx.Client). `http` is borrowed if given (never closed here).

    Every method raises the SignoffAPIError branch matching the server's answer; see
    `AsyncSignoffClient` for the same API with `await`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._http = http or httpx.Client()
        self._owns_http = http is None

    request_approval = _sync(_Core.request_approval)
    get = _sync(_Core.get)
    wait = _sync(_Core.wait)
    ask = _sync(_Core.ask)
    agent = _sync(_Core.agent)
    cancel = _sync(_Core.cancel)
    report_outcome = _sync(_Core.report_outcome)

    def _run(self, plan: Plan[T]) -> T:
        try:
            call = next(plan)
            while True:
                call = plan.send(self._send(call))
        except StopIteration as stop:
            return cast(T, stop.value)

    def _send(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(call.build(self._http))
            except httpx.TransportError as exc:
                delay = self._core.retry_delay(attempt, None)
                if delay is None:
                    raise self._core.unavailable(call, exc) from exc
            else:
                delay = self._core.retry_delay(attempt, response)
                if delay is None:
                    return response
            time.sleep(delay)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSignoffClient:
    """Async client (httpx.AsyncClient). `http` is borrowed if given (never closed here)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self._core = _Core(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        self._http = http or httpx.AsyncClient()
        self._owns_http = http is None

    request_approval = _async(_Core.request_approval)
    get = _async(_Core.get)
    wait = _async(_Core.wait)
    ask = _async(_Core.ask)
    agent = _async(_Core.agent)
    cancel = _async(_Core.cancel)
    report_outcome = _async(_Core.report_outcome)

    async def _run(self, plan: Plan[T]) -> T:
        try:
            call = next(plan)
            while True:
                call = plan.send(await self._send(call))
        except StopIteration as stop:
            return cast(T, stop.value)

    async def _send(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(call.build(self._http))
            except httpx.TransportError as exc:
                delay = self._core.retry_delay(attempt, None)
                if delay is None:
                    raise self._core.unavailable(call, exc) from exc
            else:
                delay = self._core.retry_delay(attempt, response)
                if delay is None:
                    return response
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = [
    "Action",
    "AgentState",
    "AsyncSignoffClient",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequest",
    "RequestDetail",
    "RequestNotFound",
    "ResumeData",
    "ResumeEvent",
    "RoutingAnswer",
    "ServiceUnavailable",
    "SignoffAPIError",
    "SignoffClient",
    "Vote",
    "WebhookVerificationError",
    "derive_idempotency_key",
    "verify_webhook",
]
