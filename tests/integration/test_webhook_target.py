"""WebhookResumeTarget against a real HTTP server on loopback."""

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from adapters.resume import WebhookResumeTarget
from adapters.resume.webhook import NO_SECRET, parse_retry_after
from bot.core.errors import DeliveryError
from bot.core.ports import WebhookDelivery
from tests.support.http_receiver import HttpReceiver, Recorded, Reply, free_port

BODY: dict[str, Any] = {
    "type": "request.resolved",
    "timestamp": "2026-01-02T03:04:05Z",
    "data": {
        "id": "req_01",
        "agent_id": "billing-bot",
        "status": "approved",
        "action": {"tool": "refund", "note": "café ☕ — 100 €"},
        "modified_action": None,
    },
}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
async def target() -> AsyncIterator[WebhookResumeTarget]:
    target = WebhookResumeTarget(timeout=2.0)
    yield target
    await target.aclose()


def delivery(
    url: str, secret: str | None, *, delivery_id: str = "dlv_01", attempt: int = 1
) -> WebhookDelivery:
    return WebhookDelivery(id=delivery_id, url=url, body=BODY, secret=secret, attempt=attempt)


async def test_signed_delivery_verifies_on_the_receiver(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    before = int(time.time())
    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert attempt.ok
    assert attempt.status_code == 200
    assert attempt.error is None
    [request] = await rx.wait_for(1, path="/hook")
    assert request.method == "POST"
    assert Webhook(secret).verify(request.body, request.headers) == BODY
    assert request.headers["webhook-id"] == "dlv_01"
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Signoff-Webhooks/1"


async def test_body_is_compact_utf8_json(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    await target.deliver(delivery(f"{rx.url}/hook", secret))

    [request] = await rx.wait_for(1)
    expected = json.dumps(BODY, separators=(",", ":"), ensure_ascii=False).encode()
    assert request.body == expected
    assert "café ☕".encode() in request.body


async def test_signature_does_not_verify_with_another_secret(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    await target.deliver(delivery(f"{rx.url}/hook", secret))

    [request] = await rx.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)


async def test_tampered_body_does_not_verify(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    await target.deliver(delivery(f"{rx.url}/hook", secret))

    [request] = await rx.wait_for(1)
    tampered = request.body.replace(b"approved", b"rejected")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)


async def test_retry_keeps_the_webhook_id(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/hook", Reply(500), Reply(204))

    first = await target.deliver(delivery(f"{rx.url}/hook", secret, attempt=1))
    second = await target.deliver(delivery(f"{rx.url}/hook", secret, attempt=2))

    assert (first.ok, first.status_code) == (False, 500)
    assert (second.ok, second.status_code) == (True, 204)
    requests = await rx.wait_for(2, path="/hook")
    assert [r.headers["webhook-id"] for r in requests] == ["dlv_01", "dlv_01"]
    for request in requests:
        assert Webhook(secret).verify(request.body, request.headers) == BODY


async def test_server_error_is_a_retryable_failure(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/hook", Reply(500, b"boom"))

    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert not attempt.ok
    assert not attempt.gone
    assert attempt.status_code == 500
    assert attempt.retry_after is None
    assert attempt.error == "HTTP 500"


async def test_retry_after_seconds_is_reported(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/hook", Reply(503, headers={"Retry-After": "7"}))

    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert not attempt.ok
    assert attempt.status_code == 503
    assert attempt.retry_after == 7.0


async def test_retry_after_http_date_is_reported(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond(
        "/hook", Reply(429, headers={"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    )

    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert attempt.status_code == 429
    assert attempt.retry_after is not None
    # HTTP dates have whole seconds, and a moment passes between writing and reading it.
    assert 115 <= attempt.retry_after <= 120


async def test_unparseable_retry_after_is_ignored(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/hook", Reply(503, headers={"Retry-After": "soon"}))

    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert attempt.status_code == 503
    assert attempt.retry_after is None


async def test_gone_stops_retries(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/hook", Reply(410))

    attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))

    assert not attempt.ok
    assert attempt.gone
    assert attempt.status_code == 410


async def test_connection_refused_comes_back_as_an_error(
    target: WebhookResumeTarget, secret: str
) -> None:
    attempt = await target.deliver(delivery(f"http://127.0.0.1:{free_port()}/hook", secret))

    assert not attempt.ok
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("ConnectError")
    assert secret not in attempt.error


async def test_unsupported_url_comes_back_as_an_error(
    target: WebhookResumeTarget, secret: str
) -> None:
    attempt = await target.deliver(delivery("ftp://127.0.0.1/hook", secret))

    assert not attempt.ok
    assert attempt.error is not None
    assert attempt.error.startswith("UnsupportedProtocol")


async def test_timeout_comes_back_as_an_error(rx: HttpReceiver, secret: str) -> None:
    async def slow(request: Recorded) -> Reply:
        await asyncio.sleep(5)
        return Reply(200)

    rx.set_handler("/hook", slow)
    target = WebhookResumeTarget(timeout=0.3)
    try:
        started = time.monotonic()
        attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))
        elapsed = time.monotonic() - started
    finally:
        await target.aclose()

    assert not attempt.ok
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("ReadTimeout")
    assert elapsed < 2
    await rx.wait_for(1, path="/hook")


async def test_redirect_is_not_followed(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    rx.respond("/old", Reply(307, headers={"Location": f"{rx.url}/new"}))

    attempt = await target.deliver(delivery(f"{rx.url}/old", secret))

    assert not attempt.ok
    assert attempt.status_code == 307
    assert attempt.error is not None
    assert "redirects are not followed" in attempt.error
    await rx.wait_for(1, path="/old")
    await asyncio.sleep(0.1)
    assert [r.path for r in rx.requests] == ["/old"]


async def test_redirect_is_not_followed_even_by_a_borrowed_following_client(
    rx: HttpReceiver, secret: str
) -> None:
    rx.respond("/old", Reply(302, headers={"Location": f"{rx.url}/new"}))
    async with httpx.AsyncClient(follow_redirects=True) as client:
        attempt = await WebhookResumeTarget(client).deliver(delivery(f"{rx.url}/old", secret))

    assert attempt.status_code == 302
    assert not attempt.ok
    assert [r.path for r in rx.requests] == ["/old"]


async def test_no_secret_sends_nothing(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    unsigned = await target.deliver(delivery(f"{rx.url}/hook", None, delivery_id="dlv_unsigned"))
    empty = await target.deliver(delivery(f"{rx.url}/hook", "", delivery_id="dlv_empty"))
    signed = await target.deliver(delivery(f"{rx.url}/hook", secret, delivery_id="dlv_signed"))

    assert (unsigned.ok, unsigned.status_code, unsigned.error) == (False, None, NO_SECRET)
    assert (empty.ok, empty.error) == (False, NO_SECRET)
    assert signed.ok
    # The signed request's arrival proves the server was listening the whole time.
    await rx.wait_for(1)
    assert [r.headers["webhook-id"] for r in rx.requests] == ["dlv_signed"]


async def test_invalid_secret_sends_nothing_and_is_not_echoed(
    rx: HttpReceiver, target: WebhookResumeTarget
) -> None:
    bad = "whsec_abcde"  # five base64 characters cannot be decoded

    attempt = await target.deliver(delivery(f"{rx.url}/hook", bad))

    assert not attempt.ok
    assert attempt.error is not None
    assert "abcde" not in attempt.error
    assert rx.requests == []


async def test_unserializable_body_is_a_permanent_error(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    broken = WebhookDelivery(
        id="dlv_x", url=f"{rx.url}/hook", body={"when": datetime.now(UTC)}, secret=secret, attempt=1
    )

    with pytest.raises(DeliveryError) as raised:
        await target.deliver(broken)

    assert raised.value.retryable is False
    assert rx.requests == []


async def test_custom_user_agent(rx: HttpReceiver, secret: str) -> None:
    target = WebhookResumeTarget(user_agent="Signoff-Test/9")
    try:
        await target.deliver(delivery(f"{rx.url}/hook", secret))
    finally:
        await target.aclose()

    [request] = await rx.wait_for(1)
    assert request.headers["user-agent"] == "Signoff-Test/9"


async def test_borrowed_client_stays_open(rx: HttpReceiver, secret: str) -> None:
    async with httpx.AsyncClient() as client:
        target = WebhookResumeTarget(client)
        attempt = await target.deliver(delivery(f"{rx.url}/hook", secret))
        await target.aclose()

        assert attempt.ok
        assert not client.is_closed


async def test_own_client_is_reopened_after_aclose(
    rx: HttpReceiver, target: WebhookResumeTarget, secret: str
) -> None:
    assert (await target.deliver(delivery(f"{rx.url}/hook", secret))).ok
    await target.aclose()
    assert (await target.deliver(delivery(f"{rx.url}/hook", secret))).ok
    await rx.wait_for(2)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    )
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:30 -0000", now=now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0
    assert parse_retry_after("Sun, 99 Foo 2026 12:00:00 GMT", now=now) is None
