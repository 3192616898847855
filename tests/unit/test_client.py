"""The agent client against the real app: AsyncSignoffClient through httpx's ASGI transport,
SignoffClient over a socket to the app served from a thread, retries against a real HTTP
server that answers 503, and `verify_webhook` on webhooks the outbox really sent."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from bot.core.domain import Verdict
from bot.engine.wire import RequestOut, SubmitOut, VoteOut
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.http import SubmitIn
from bot.server.services import Services
from signoff_client import _client as client_module
from signoff_client._client import (
    AsyncSignoffClient,
    AuthenticationError,
    ConflictError,
    InvalidRequest,
    RequestDetail,
    RequestNotFound,
    ResumeEvent,
    RoutingAnswer,
    ServiceUnavailable,
    SignoffClient,
    Vote,
    WebhookVerificationError,
    derive_idempotency_key,
    verify_webhook,
)
from signoff_client.mcp import approval_server
from signoff_client.submission import Submission
from storage.memory import InMemoryRepository
from tests.support.http_receiver import HttpReceiver, Reply, free_port
from tests.support.loopback import ThreadedServer
from tests.support.world import SECRET, TIERS, new_request

KEY = "sk_test_client"
OTHER_KEY = "sk_test_other"
PAYMENT = {"kind": "payment", "summary": "Pay INV-123 to ACME", "payload": {"invoice": "INV-123"}}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def config(callback: str = "http://127.0.0.1:9/resume") -> Any:
    return parse_config(
        {
            "agents": [
                {
                    "id": "invoice-bot",
                    "key_sha256": digest(KEY),
                    "callback_url": callback,
                    "webhook_secret_env": "TEST_WEBHOOK_SECRET",
                },
                {"id": "other-bot", "key_sha256": digest(OTHER_KEY)},
            ],
            "tiers": TIERS,
        },
        env={},
    )


@pytest.fixture
async def svc() -> AsyncIterator[Services]:
    services = await build_services(
        config(),
        repo=InMemoryRepository(),
        env={"TEST_WEBHOOK_SECRET": SECRET},
        start_scheduler=False,
    )
    services.wait_poll_interval = 0.05
    async with services.stack:
        yield services


@pytest.fixture
async def signoff(svc: Services) -> AsyncIterator[AsyncSignoffClient]:
    transport = httpx.ASGITransport(app=create_app(svc.config, services=svc))
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncSignoffClient("http://signoff", KEY, http=http, max_retries=0) as client,
    ):
        yield client


# -- the happy paths, typed -------------------------------------------------------------------


async def test_request_approval_answers_with_the_routing_decision(
    signoff: AsyncSignoffClient,
) -> None:
    answer = await signoff.request_approval(
        PAYMENT, 0.95, thread_id="lg-42", amount=5000, currency="USD"
    )
    assert isinstance(answer, RoutingAnswer)
    assert answer.id.startswith("req_") and answer.status == "pending" and not answer.proceed
    assert (answer.lane, answer.risk, answer.tier) == ("escalate", "high", "manager")
    assert answer.reasons == ["high_value_transaction"] and answer.approvals_required == 1
    assert isinstance(answer.created_at, datetime) and answer.review == "none"
    quick = await signoff.request_approval({"kind": "invoice", "summary": "File INV-124"}, 0.9)
    assert quick.proceed and quick.lane == "autonomous"


async def test_the_idempotency_key_comes_from_thread_and_action(
    signoff: AsyncSignoffClient, svc: Services
) -> None:
    first = await signoff.request_approval(PAYMENT, 0.4, thread_id="lg-1")
    again = await signoff.request_approval(PAYMENT, 0.4, thread_id="lg-1")
    assert again == first
    assert await svc.repo.find_idempotency("invoice-bot", derive_idempotency_key("lg-1", PAYMENT))
    with pytest.raises(ConflictError) as conflict:
        await signoff.request_approval(PAYMENT, 0.9, thread_id="lg-1")  # same key, other body
    assert conflict.value.status_code == 409
    assert conflict.value.error == "idempotency_key_reused" and first.id in conflict.value.detail
    fresh = await signoff.request_approval(PAYMENT, 0.9, thread_id="lg-1", idempotency_key="k2")
    other_thread = await signoff.request_approval(PAYMENT, 0.4, thread_id="lg-2")
    unthreaded = [await signoff.request_approval(PAYMENT, 0.4) for _ in range(2)]
    ids = {first.id, fresh.id, other_thread.id, *(a.id for a in unthreaded)}
    assert len(ids) == 5


async def test_get_wait_cancel_and_outcome(signoff: AsyncSignoffClient, svc: Services) -> None:
    answer = await signoff.request_approval(PAYMENT, 0.3, thread_id="lg-5")
    detail = await signoff.get(answer.id)
    assert isinstance(detail, RequestDetail) and detail.status == "pending"
    assert detail.action.payload == {"invoice": "INV-123"} and not detail.is_final
    assert detail.action.sha256 == detail.action_sha256

    started = time.monotonic()
    still = await signoff.wait(answer.id, timeout=0.2)
    assert still.status == "pending" and 0.15 < time.monotonic() - started < 2

    async def reviewer() -> None:
        await asyncio.sleep(0.1)
        await svc.engine.vote(
            answer.id,
            "web:sam",
            Verdict.MODIFY,
            channel="web",
            rationale="split it",
            modified_payload={"invoice": "INV-123", "part": 1},
        )

    decided, _ = await asyncio.gather(signoff.wait(answer.id, timeout=10), reviewer())
    assert decided.status == "modified" and decided.current_action.payload["part"] == 1
    assert decided.current_action.sha256 == decided.action_sha256
    [vote] = decided.votes
    assert isinstance(vote, Vote) and vote.verdict == "modify" and vote.rationale == "split it"
    assert decided.decided_at is not None

    recorded = await signoff.report_outcome(answer.id, correct=False, note="paid twice")
    assert recorded.outcome is not None and recorded.outcome["note"] == "paid twice"

    other = await signoff.request_approval(PAYMENT, 0.3, thread_id="lg-6")
    assert (await signoff.cancel(other.id)).status == "cancelled"
    with pytest.raises(ConflictError) as conflict:
        await signoff.cancel(other.id)
    assert conflict.value.error == "not_pending"


async def test_wait_repeats_long_polls_up_to_its_timeout(
    signoff: AsyncSignoffClient, svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "LONG_POLL_MAX", 0.1)  # the server's 60 s, shrunk
    answer = await signoff.request_approval(PAYMENT, 0.3)
    polls: list[httpx.Request] = []
    signoff._http.event_hooks["request"].append(lambda r: _record(polls, r))
    pending = await signoff.wait(answer.id, timeout=0.35)
    assert pending.status == "pending" and len(polls) >= 3
    assert all(float(r.url.params["timeout"]) <= 0.1 for r in polls)

    async def reviewer() -> None:
        await asyncio.sleep(0.25)
        await svc.engine.vote(answer.id, "web:sam", Verdict.APPROVE, channel="web")

    decided, _ = await asyncio.gather(signoff.wait(answer.id, timeout=5), reviewer())
    assert decided.status == "approved"


async def _record(polls: list[httpx.Request], request: httpx.Request) -> None:
    polls.append(request)


async def test_errors_carry_the_server_body(svc: Services, signoff: AsyncSignoffClient) -> None:
    transport = httpx.ASGITransport(app=create_app(svc.config, services=svc))
    async with httpx.AsyncClient(transport=transport) as http:
        stranger = AsyncSignoffClient("http://signoff", "sk_nobody", http=http)
        with pytest.raises(AuthenticationError) as unauthorized:
            await stranger.get("req_x")
        assert unauthorized.value.status_code == 401 and unauthorized.value.error == "unauthorized"
        other = AsyncSignoffClient("http://signoff", OTHER_KEY, http=http)
        theirs = await other.request_approval(PAYMENT, 0.3)
    with pytest.raises(RequestNotFound) as missing:
        await signoff.get(theirs.id)  # another agent's request
    assert missing.value.error == "not_found" and theirs.id in missing.value.detail
    with pytest.raises(InvalidRequest) as invalid:
        await signoff.request_approval(PAYMENT, 2.0)
    assert invalid.value.status_code == 422 and invalid.value.error == "invalid_body"
    assert invalid.value.detail[0]["loc"] == ["body", "confidence"]
    with pytest.raises(InvalidRequest) as outside:
        await signoff.request_approval(PAYMENT, 0.3, callback_url="http://evil.test/x")
    assert outside.value.error == "invalid_callback_url"


async def test_request_approval_takes_exactly_the_fields_of_the_one_submission_model() -> None:
    # The keyword arguments are the Python face of `Submission`, which the server validates
    # bodies with and the engine routes: a field added there and not here (or the reverse)
    # fails this test.
    params = inspect.signature(client_module._Core.request_approval).parameters
    assert set(params) - {"self", "idempotency_key"} == set(Submission.model_fields)
    assert issubclass(SubmitIn, Submission)
    assert set(SubmitIn.model_fields) == set(Submission.model_fields)
    # The MCP tool offers a subset of them, under the same names.
    server = approval_server(AsyncSignoffClient("http://signoff", "k"), agent="a")
    tools = {tool.name: tool for tool in await server.list_tools()}
    offered = set(tools["request_approval"].input_schema["properties"])
    assert "confidence" in offered and offered <= set(Submission.model_fields)


def test_the_results_mirror_every_field_of_the_server_models() -> None:
    assert set(SubmitOut.model_fields) <= set(RoutingAnswer.model_fields)
    assert set(RequestOut.model_fields) <= set(RequestDetail.model_fields)
    assert set(VoteOut.model_fields) <= set(Vote.model_fields)


# -- retries ----------------------------------------------------------------------------------

ANSWER = {
    "id": "req_1",
    "status": "approved",
    "lane": "autonomous",
    "risk": "low",
    "reasons": [],
    "tier": None,
    "approvals_required": 1,
    "created_at": "2026-01-05T09:00:00Z",
    "review": "none",
}
UNAVAILABLE = Reply.json({"error": "unavailable", "detail": "retry"}, status=503)


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


async def test_503_is_retried_with_the_same_idempotency_key(rx: HttpReceiver) -> None:
    rx.respond("/v1/requests", UNAVAILABLE, UNAVAILABLE, Reply.json(ANSWER, status=201))
    async with (
        httpx.AsyncClient(headers={"x-trace-id": "t-1"}) as http,  # the agent's own client
        AsyncSignoffClient(rx.url, KEY, http=http, backoff=0.01) as signoff,
    ):
        answer = await signoff.request_approval(PAYMENT, 0.9)
    assert answer.id == "req_1"
    attempts = rx.requests
    assert len(attempts) == 3
    assert len({r.headers["idempotency-key"] for r in attempts}) == 1
    assert {r.headers["x-trace-id"] for r in attempts} == {"t-1"}
    assert {r.headers["authorization"] for r in attempts} == {f"Bearer {KEY}"}
    assert {r.body for r in attempts} == {attempts[0].body}


def test_retry_after_is_honoured_up_to_the_cap(rx: HttpReceiver) -> None:
    hinted = Reply.json({"error": "unavailable"}, status=503, headers={"retry-after": "0.3"})
    rx.respond("/v1/requests", hinted, Reply.json(ANSWER, status=201))
    with SignoffClient(rx.url, KEY, backoff=0.01) as signoff:
        started = time.monotonic()
        assert signoff.request_approval(PAYMENT, 0.9).proceed
    assert time.monotonic() - started >= 0.3


async def test_retries_are_bounded(rx: HttpReceiver) -> None:
    rx.set_handler("/v1/requests/req_1", lambda _: UNAVAILABLE)
    async with AsyncSignoffClient(rx.url, KEY, max_retries=2, backoff=0.01) as signoff:
        with pytest.raises(ServiceUnavailable) as gave_up:
            await signoff.get("req_1")
    assert gave_up.value.status_code == 503 and len(rx.requests) == 3


def test_connection_errors_are_retried_then_reported() -> None:
    with SignoffClient(f"http://127.0.0.1:{free_port()}", KEY, max_retries=2, backoff=0.05) as c:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as gave_up:
            c.get("req_1")
    assert gave_up.value.status_code is None and "ConnectError" in str(gave_up.value)
    assert 0.05 * 0.8 + 0.1 * 0.8 <= time.monotonic() - started < 5


# -- the blocking client over a socket --------------------------------------------------------


def test_the_blocking_client_against_the_served_app() -> None:
    app = create_app(config(), repo=InMemoryRepository(), env={}, start_scheduler=False)
    with ThreadedServer(app) as server, SignoffClient(server.url, KEY) as signoff:
        answer = signoff.request_approval(PAYMENT, 0.3, thread_id="lg-9", amount=100)
        assert answer.status == "pending" and answer.risk == "medium"
        assert signoff.request_approval(PAYMENT, 0.3, thread_id="lg-9", amount=100) == answer
        assert signoff.get(answer.id).thread_id == "lg-9"
        assert signoff.wait(answer.id, timeout=0.1).status == "pending"

        def cancel_soon() -> None:
            time.sleep(0.2)
            with SignoffClient(server.url, KEY) as other:
                other.cancel(answer.id)

        canceller = threading.Thread(target=cancel_soon)
        canceller.start()
        started = time.monotonic()
        assert signoff.wait(answer.id, timeout=10).status == "cancelled"
        assert time.monotonic() - started < 5
        canceller.join()
        recorded = signoff.report_outcome(answer.id, True, note="right call")
        assert recorded.outcome is not None and recorded.outcome["correct"] is True
        with pytest.raises(RequestNotFound):
            signoff.get("req_missing")
    with SignoffClient(server.url, "sk_wrong", max_retries=0) as stranger:
        with pytest.raises(ServiceUnavailable):
            stranger.get("req_x")  # the server is gone now


# -- verify_webhook ---------------------------------------------------------------------------


async def delivered_webhook(verdict: Verdict, **vote: Any) -> tuple[dict[str, str], bytes]:
    """A webhook as the outbox really sends it, caught by a real HTTP server."""
    with HttpReceiver() as agent:
        services = await build_services(
            config(f"{agent.url}/resume"),
            repo=InMemoryRepository(),
            env={"TEST_WEBHOOK_SECRET": SECRET},
            start_scheduler=False,
        )
        async with services.stack:
            submitted = await services.engine.submit(
                "invoice-bot", new_request(confidence=0.3, thread_id="lg-3")
            )
            await services.engine.vote(
                str(submitted.response["id"]), "web:sam", verdict, channel="web", **vote
            )
            await services.worker.drain()
        [hit] = await agent.wait_for(1, path="/resume")
    return hit.headers, hit.body


async def test_verify_webhook_reads_a_real_delivery() -> None:
    headers, body = await delivered_webhook(
        Verdict.MODIFY, rationale="fix", modified_payload={"invoice": "INV-123", "amount": 1}
    )
    event = verify_webhook(headers, body, SECRET)
    assert isinstance(event, ResumeEvent) and event.type == "request.resolved"
    assert event.webhook_id == headers["webhook-id"]
    data = event.data
    assert data.status == "modified" and data.thread_id == "lg-3"
    assert data.modified_action is not None and data.current_action.payload["amount"] == 1
    assert data.action_sha256 == data.current_action.sha256
    assert [v.verdict for v in data.votes] == ["modify"] and data.votes[0].rationale == "fix"


async def test_verify_webhook_refuses_tampering() -> None:
    headers, body = await delivered_webhook(Verdict.APPROVE)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body.replace(b'"approved"', b'"rejected"'), SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, "whsec_" + "QUJD" * 8)
    with pytest.raises(WebhookVerificationError):
        verify_webhook({**headers, "webhook-signature": "v1,not base64!"}, body, SECRET)
    # Correctly signed, but the hash does not belong to the action it carries.
    forged = body.replace(b'"INV-123"', b'"INV-999"')
    resigned = Webhook(SECRET).sign(
        headers["webhook-id"],
        datetime.fromtimestamp(int(headers["webhook-timestamp"])),
        forged.decode(),
    )
    with pytest.raises(WebhookVerificationError, match="action_sha256"):
        verify_webhook({**headers, "webhook-signature": resigned}, forged, SECRET)
