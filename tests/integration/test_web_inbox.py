"""The web inbox (CONTRACT section 8) through its forms, as a browser without JavaScript uses it."""

from __future__ import annotations

import base64
import csv
import dataclasses
import functools
import hashlib
import io
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.web.export import AUDIT_CSV_FIELDS
from adapters.web.passwords import hash_password
from bot.core.clock import ManualClock
from bot.core.domain import (
    Change,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Status,
    new_id,
)
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from bot.server.services import Services
from bot.server.web import issue_login_link, mount_web, web_inbox
from tests.conftest import RepoFactory

KEY = "sk_test_invoice_bot"
SECRET_ENV = {"SIGNOFF_SESSION_SECRET": "test-session-secret-0123456789"}
PASSWORDS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "jan": "jan-pw",
    "owner": "owner-pw",
    "req": "req-pw",
}
TIERS = [
    {"name": "junior", "sla": "15m", "reviewers": ["web:jan"]},
    {"name": "senior", "sla": "1h", "reviewers": ["web:sam"]},
    {"name": "manager", "sla": "4h", "reviewers": ["web:alice", "web:bob", "web:owner", "web:req"]},
]
PAYMENT: dict[str, Any] = {
    "action": {"kind": "payment", "summary": "Pay INV-123 to ACME", "payload": {"invoice": 1}},
    "confidence": 0.62,
    "amount": 5000,
    "currency": "USD",
    "callback_url": "http://127.0.0.1:9/resume",
    "context": {
        "summary": "ACME invoice",
        "recommendation": "pay it",
        "alternatives": ["wait"],
        "failure_reason": "PO mismatch",
        "conversation": [{"role": "customer", "content": "Please pay <b>now</b>"}],
        "customer": {"name": "ACME"},
    },
}
LOW: dict[str, Any] = {"action": {"kind": "invoice", "summary": "File INV-9"}, "confidence": 0.3}
REVIEW: dict[str, Any] = {"action": {"kind": "invoice", "summary": "File INV-7"}, "confidence": 0.6}
TWO_PERSON: dict[str, Any] = {
    "action": {"kind": "delete", "summary": "Drop staging"},
    "confidence": 0.9,
    "reversible": False,
}


@functools.cache
def hashes() -> dict[str, dict[str, str]]:
    return {
        name: {"password_hash": hash_password(pw), "name": name.title()}
        for name, pw in PASSWORDS.items()
    }


def config(*, web: bool = True) -> Any:
    data: dict[str, Any] = {
        "agents": [
            {
                "id": "invoice-bot",
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                "owner": "web:owner",
                "callback_url": "http://127.0.0.1:9/resume",
                "webhook_secret_env": "INVOICE_SECRET",
            }
        ],
        "tiers": TIERS,
    }
    if web:
        data["web"] = {"reviewers": hashes()}
    return parse_config(data, env={})


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(repo_factory: RepoFactory, clock: ManualClock) -> AsyncIterator[Services]:
    services = await build_services(
        config(), repo=await repo_factory(), clock=clock, start_scheduler=False
    )
    async with services.stack:
        yield services


def make_app(svc: Services) -> Any:
    web_inbox(svc, env=SECRET_ENV)  # made first, so create_app's mount_web reuses it
    app = create_app(svc.config, services=svc)
    if not any(getattr(r, "path", None) == "/dashboard" for r in app.routes):
        mount_web(app, svc)
    return app


@pytest.fixture
def app(svc: Services) -> Any:
    return make_app(svc)


def browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signoff")


@pytest.fixture
async def agent(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


async def submit(agent: httpx.AsyncClient, body: dict[str, Any], **more: Any) -> str:
    response = await agent.post("/v1/requests", json={**body, **more})
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def login(
    client: httpx.AsyncClient, name: str, password: str | None = None
) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "csrf": csrf(page.text),
            "username": name,
            "password": PASSWORDS[name] if password is None else password,
            "next": "/",
        },
    )


@asynccontextmanager
async def as_reviewer(app: Any, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as client:
        response = await login(client, name)
        assert response.status_code == 303, response.text
        yield client


async def vote(
    client: httpx.AsyncClient, rid: str, verdict: str, rationale: str = "", **fields: str
) -> httpx.Response:
    page = await client.get(f"/requests/{rid}")
    assert page.status_code == 200
    return await client.post(
        f"/requests/{rid}/vote",
        data={"csrf": csrf(page.text), "verdict": verdict, "rationale": rationale, **fields},
    )


def inbox_ids(html: str) -> list[str]:
    return re.findall(r'data-request-id="([^"]+)"', html)


def unescape(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')


async def state(svc: Services, rid: str) -> Any:
    return await svc.engine.get(rid)


# -- sign-in ----------------------------------------------------------------------------------


async def test_login_logout_and_cookie_flags(app: Any) -> None:
    async with browser(app) as client:
        first = await client.get("/")
        assert first.status_code == 303 and first.headers["location"] == "/login?next=%2F"
        page = await client.get("/login?next=/dashboard")
        assert page.status_code == 200 and 'name="password"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        signed = await client.post(
            "/login",
            data={
                "csrf": csrf(page.text),
                "username": "alice",
                "password": "alice-pw",
                "next": "/dashboard",
            },
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        home = await client.get("/")
        assert home.status_code == 200 and "Signed in as <strong>Alice</strong>" in home.text
        assert (await client.get("/login")).status_code == 303  # already signed in
        stolen = client.cookies["signoff_session"]

        out = await client.post("/logout", data={"csrf": csrf(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login?out=1"
        assert (await client.get("/")).status_code == 303
        assert "You are signed out" in (await client.get("/login?out=1")).text

    # The cookie from before the sign-out no longer opens a session.
    async with browser(app) as replay:
        replay.cookies.set("signoff_session", stolen)
        assert (await replay.get("/")).status_code == 303


async def test_open_redirects_after_sign_in_are_refused(app: Any) -> None:
    async with browser(app) as client:
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={
                "csrf": csrf(page.text),
                "username": "alice",
                "password": "alice-pw",
                "next": "//evil.example/",
            },
        )
        assert response.headers["location"] == "/"


async def test_wrong_password_and_unknown_name_get_the_same_answer(app: Any) -> None:
    async with browser(app) as client:
        wrong = await login(client, "alice", "nope")
        assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
        unknown = await login(client, "mallory", "x")
        assert unknown.status_code == 401 and "Wrong name or password." in unknown.text
        empty = await login(client, "alice", "")
        assert empty.status_code == 401
        assert (await client.get("/")).status_code == 303


async def test_five_failures_lock_the_name_for_fifteen_minutes(
    app: Any, clock: ManualClock
) -> None:
    async with browser(app) as client:
        for _ in range(4):
            assert (await login(client, "bob", "bad")).status_code == 401
        fifth = await login(client, "bob", "bad")
        assert fifth.status_code == 429 and "locked for 15 minutes" in fifth.text
        right = await login(client, "bob")
        assert right.status_code == 429 and "Too many failed sign-ins" in right.text
        # Other names are not affected.
        assert (await login(client, "alice")).status_code == 303
    clock.advance(timedelta(minutes=15))
    async with browser(app) as client:
        assert (await login(client, "bob")).status_code == 303


async def test_login_without_csrf_is_refused(app: Any) -> None:
    async with browser(app) as client:
        await client.get("/login")
        response = await client.post("/login", data={"username": "alice", "password": "alice-pw"})
        assert response.status_code == 403 and "Nothing was changed" in response.text
        assert (await client.get("/")).status_code == 303


async def test_tampered_or_foreign_sessions_are_rejected(app: Any, svc: Services) -> None:
    async with as_reviewer(app, "jan") as client:
        value = client.cookies["signoff_session"]
    payload, signature = value.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["login"] = "alice"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    for cookie in (f"{forged}.{signature}", f"{payload}.AAAA", "nonsense"):
        async with browser(app) as attacker:
            attacker.cookies.set("signoff_session", cookie)
            response = await attacker.get("/")
            assert response.status_code == 303 and response.headers["location"].startswith("/login")
    # Another process with the same SIGNOFF_SESSION_SECRET accepts the cookie (a restart
    # keeps people signed in); one with a random secret of its own does not.
    for env, expected in ((SECRET_ENV, 200), ({}, 303)):
        svc.web_inbox = None
        restarted = FastAPI()
        mount_web(restarted, svc, env=env)
        async with browser(restarted) as client2:
            client2.cookies.set("signoff_session", value)
            assert (await client2.get("/")).status_code == expected
    # A new password (or a removed reviewer) ends the sessions opened with the old one.
    changed = {**hashes(), "jan": {"password_hash": hash_password("new-pw"), "name": "Jan"}}
    data = {"agents": [], "tiers": TIERS, "web": {"reviewers": changed}}
    renewed = dataclasses.replace(svc, config=parse_config(data, env={}), web_inbox=None)
    app2 = FastAPI()
    mount_web(app2, renewed, env=SECRET_ENV)
    async with browser(app2) as client3:
        client3.cookies.set("signoff_session", value)
        assert (await client3.get("/")).status_code == 303


# -- the inbox --------------------------------------------------------------------------------


async def test_inbox_lists_only_what_the_reviewer_may_act_on(
    app: Any, agent: httpx.AsyncClient, clock: ManualClock
) -> None:
    manager_item = await submit(agent, PAYMENT, requested_by="web:req")
    clock.advance(timedelta(seconds=1))
    senior_item = await submit(agent, LOW)
    review_item = await submit(agent, REVIEW)
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/")
        assert set(inbox_ids(page.text)) == {manager_item, senior_item, review_item}
        # Oldest deadline first: the senior item's 1 h SLA ends before the manager's 4 h.
        assert inbox_ids(page.text)[:2] == [senior_item, manager_item]
        text = page.text
        for shown in (
            "Large payment",
            "62% sure",
            "$5,000.00",
            "Needs one person from tier manager or above",
            "Rejected automatically at",
            "if no one decides",
            "3h 59m left",
            "check after the fact",
        ):
            assert shown in text, shown
        # Reviewers read titles, not rule identifiers, and never the routing lane.
        for hidden in ("high_value_transaction", "lane", "5,000 USD"):
            assert hidden not in text.lower(), hidden
        high = await alice.get("/", params={"risk": "high"})
        assert inbox_ids(high.text) == [manager_item]
        senior = await alice.get("/", params={"tier": "senior"})
        assert inbox_ids(senior.text) == [senior_item]
        other = await alice.get("/", params={"agent": "someone-else"})
        assert inbox_ids(other.text) == [] and "Nothing is waiting for you." in other.text
        rows = await alice.get("/inbox/rows", params={"risk": "high"})
        assert rows.status_code == 200 and inbox_ids(rows.text) == [manager_item]
        assert 'data-live-url="/inbox/rows?risk=high"' in rows.text and "<html" not in rows.text
    async with as_reviewer(app, "jan") as jan:
        # Junior reviewers do not see senior or manager items; the review item is junior.
        assert inbox_ids((await jan.get("/")).text) == [review_item]
    async with as_reviewer(app, "req") as req:
        # The requester may never decide their own request.
        assert manager_item not in inbox_ids((await req.get("/")).text)
    async with as_reviewer(app, "owner") as owner:
        # The agent's owner may decide none of its requests.
        assert inbox_ids((await owner.get("/")).text) == []
    async with browser(app) as anonymous:
        polled = await anonymous.get("/inbox/rows")
        assert polled.status_code == 401


async def test_the_item_page_shows_the_context_first(app: Any, agent: httpx.AsyncClient) -> None:
    rid = await submit(agent, PAYMENT)
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get(f"/requests/{rid}")
        text = page.text
        assert page.status_code == 200
        # The first screen decides: what, how much, why, the agent's advice, who, when, then
        # the buttons; the payload and the rest of the context come after.
        order = [
            text.index(s)
            for s in (
                "Pay INV-123 to ACME",
                "$5,000.00",
                "PO mismatch",
                "ACME invoice",
                "Large payment",
                "A payment of 5,000 USD is over the 500 limit",
                "pay it",
                "62% confident",
                "Needs one person from tier manager or above",
                "Rejected automatically at",
                "Your verdict",
                'value="approve"',
                'value="reject"',
                "Modify…",
                "What the agent will do",
                "<li>wait</li>",
                "Conversation",
                "Customer",
                "What happened",
            )
        ]
        assert order == sorted(order)
        assert '<time datetime="' in text[order[9] : order[10]]
        assert "Please pay &lt;b&gt;now&lt;/b&gt;" in text  # escaped, not rendered
        # The audit trail in sentences, each event's JSON on demand.
        assert "Submitted at" in text and "by agent invoice-bot" in text
        assert "Sent to a person at tier manager" in text and "as JSON</summary>" in text
        # Only the records themselves (JSON on demand) keep the routing's own words.
        words = re.sub(r'<details class="raw">.*?</details>', "", text, flags=re.S)
        assert "lane" not in words.lower() and "high_value_transaction" not in words
        missing = await alice.get("/requests/req_nope")
        assert missing.status_code == 404 and "There is no request req_nope" in missing.text


# -- voting -----------------------------------------------------------------------------------


async def test_approve_reject_and_modify_through_forms(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    approve_me, reject_me, modify_me = [await submit(agent, LOW) for _ in range(3)]
    async with as_reviewer(app, "alice") as alice:
        done = await vote(alice, approve_me, "approve", "looks right")
        assert done.status_code == 303 and done.headers["location"] == f"/?voted={approve_me}"
        flash = await alice.get(done.headers["location"])
        assert "Your <strong>approve</strong> on" in flash.text
        assert "Approved by Alice" in flash.text
        assert approve_me not in inbox_ids(flash.text)
        item = await state(svc, approve_me)
        assert item.status is Status.APPROVED
        [cast] = item.votes
        assert (cast.reviewer, cast.name, cast.channel, cast.rationale) == (
            "web:alice",
            "Alice",
            "web",
            "looks right",
        )

        no_reason = await vote(alice, reject_me, "reject")
        assert no_reason.status_code == 422
        assert "A rationale is required to reject" in no_reason.text
        assert (await state(svc, reject_me)).votes == ()
        rejected = await vote(alice, reject_me, "reject", "duplicate invoice")
        assert rejected.status_code == 303
        assert (await state(svc, reject_me)).status is Status.REJECTED

        bad = await vote(alice, modify_me, "modify", "fix amount", modified_payload='{"amount": 1,')
        assert bad.status_code == 422
        assert "The modified payload is not valid JSON" in bad.text
        assert "fix amount" in bad.text and "{&#34;amount&#34;: 1," in bad.text  # kept
        not_object = await vote(alice, modify_me, "modify", "fix", modified_payload="[1, 2]")
        assert not_object.status_code == 422 and "must be a JSON object" in not_object.text
        assert (await state(svc, modify_me)).votes == ()
        good = await vote(
            alice, modify_me, "modify", "fix amount", modified_payload='{"amount": 450}'
        )
        assert good.status_code == 303
        modified = await state(svc, modify_me)
        assert modified.status is Status.MODIFIED
        assert modified.modified_action.payload == {"amount": 450}

        unknown = await vote(alice, await submit(agent, LOW), "shrug")
        assert unknown.status_code == 400 and "Choose Approve" in unknown.text


async def test_two_person_rule_and_refusals_change_nothing(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    two = await submit(agent, TWO_PERSON)
    mine = await submit(agent, PAYMENT, requested_by="web:req")
    async with as_reviewer(app, "alice") as alice:
        assert (await vote(alice, two, "approve", "fine")).status_code == 303
        assert two not in inbox_ids((await alice.get("/")).text)
        page = await alice.get(f"/requests/{two}")
        assert "You cannot act on this item: you have already voted on this item" in page.text
        again = await alice.post(
            f"/requests/{two}/vote",
            data={"csrf": csrf(page.text), "verdict": "approve", "rationale": "again"},
        )
        assert again.status_code == 409
        assert "Refused:</strong> you have already voted on this item" in again.text
        no_reason = await vote(alice, mine, "approve")
        assert no_reason.status_code == 422
        assert "A rationale is required to approve a high-risk item" in no_reason.text
    async with as_reviewer(app, "bob") as bob:
        assert "1 of 2" in (await bob.get("/")).text
        assert (await vote(bob, two, "approve", "agreed")).status_code == 303
    assert (await state(svc, two)).status is Status.APPROVED

    refusals = {
        "req": "you requested this action, so you cannot decide it",
        "owner": "you own agent invoice-bot, so you cannot decide its requests",
        "jan": "you are not a reviewer of tier manager or above",
    }
    for name, message in refusals.items():
        async with as_reviewer(app, name) as reviewer:
            page = await reviewer.get(f"/requests/{mine}")
            refused = await reviewer.post(
                f"/requests/{mine}/vote",
                data={"csrf": csrf(page.text), "verdict": "approve", "rationale": "me"},
            )
            assert refused.status_code == 409, name
            assert message in unescape(refused.text), name
    async with as_reviewer(app, "bob") as bob:
        page = await bob.get(f"/requests/{two}")
        late = await bob.post(
            f"/requests/{two}/vote",
            data={"csrf": csrf(page.text), "verdict": "reject", "rationale": "late"},
        )
        assert late.status_code == 409 and "this item is already approved" in late.text
    assert (await state(svc, mine)).votes == ()
    assert len((await state(svc, two)).votes) == 2


async def test_votes_without_a_valid_csrf_token_are_403_and_record_nothing(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    rid = await submit(agent, LOW)
    async with as_reviewer(app, "alice") as alice:
        for data in (
            {"verdict": "approve", "rationale": "x"},
            {"verdict": "approve", "rationale": "x", "csrf": "forged"},
        ):
            response = await alice.post(f"/requests/{rid}/vote", data=data)
            assert response.status_code == 403 and "Form expired" in response.text
        as_json = await alice.post(f"/requests/{rid}/vote", json={"verdict": "approve"})
        assert as_json.status_code == 403
        stop = await alice.post("/agents/invoice-bot/stop", data={"reason": "x"})
        assert stop.status_code == 403
    async with as_reviewer(app, "bob") as bob:
        # Another session's token does not work either.
        other_token = csrf((await bob.get("/")).text)
    async with as_reviewer(app, "alice") as alice:
        cross = await alice.post(
            f"/requests/{rid}/vote", data={"verdict": "approve", "csrf": other_token}
        )
        assert cross.status_code == 403
    assert (await state(svc, rid)).votes == ()
    events = [r.event.event for r in await svc.repo.audit_records(request_id=rid)]
    assert "voted" not in events
    assert await svc.repo.agent_state("invoice-bot") is None


async def test_signed_out_posts_go_to_the_login(app: Any, agent: httpx.AsyncClient) -> None:
    rid = await submit(agent, LOW)
    async with browser(app) as client:
        page = await client.get("/login")
        response = await client.post(
            f"/requests/{rid}/vote", data={"csrf": csrf(page.text), "verdict": "approve"}
        )
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_review_items_are_confirmed_or_reversed(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    keep, undo = await submit(agent, REVIEW), await submit(agent, REVIEW)
    async with as_reviewer(app, "jan") as jan:
        page = await jan.get(f"/requests/{keep}")
        assert 'value="confirm"' in page.text and 'value="approve"' not in page.text
        assert (await vote(jan, keep, "confirm")).status_code == 303
        needs_reason = await vote(jan, undo, "reverse")
        assert needs_reason.status_code == 422 and "rationale is required" in needs_reason.text
        assert (await vote(jan, undo, "reverse", "wrong vendor")).status_code == 303
        assert inbox_ids((await jan.get("/")).text) == []
        closed = await jan.get(f"/requests/{keep}")
        assert "nothing left to decide" in closed.text
    assert (await state(svc, keep)).review_status.value == "confirmed"
    assert (await state(svc, undo)).status is Status.REVERSED


# -- dashboard --------------------------------------------------------------------------------


async def kill_delivery(svc: Services, clock: ManualClock, request_id: str) -> str:
    claimed = await svc.repo.claim_outbox("test", clock.now(), timedelta(minutes=1), 50)
    [message] = [m for m in claimed if m.kind is OutboxKind.WEBHOOK and m.request_id == request_id]
    await svc.repo.finish_outbox(
        message.id, "test", OutboxResult(OutboxStatus.DEAD, error="HTTP 500")
    )
    return message.id


async def test_dashboard_renders_plots_and_retries_dead_deliveries(
    app: Any, agent: httpx.AsyncClient, svc: Services, clock: ManualClock
) -> None:
    rid = await submit(agent, LOW)
    await submit(agent, PAYMENT)
    await submit(agent, REVIEW)
    async with as_reviewer(app, "alice") as alice:
        await vote(alice, rid, "reject", "no")
        dead = await kill_delivery(svc, clock, rid)
        clock.advance(timedelta(minutes=3))
        page = await alice.get("/dashboard")
        assert page.status_code == 200
        for chart in ("lanes", "escalation", "queue", "decisions", "overrides", "reviewers"):
            assert f'id="chart-{chart}"' in page.text, chart
        assert "<title" in page.text and "Alice" in page.text
        assert "webhook deliveries are dead" in page.text and dead in page.text
        assert "HTTP 500" in page.text
        retried = await alice.post(f"/deliveries/{dead}/retry", data={"csrf": csrf(page.text)})
        assert retried.status_code == 303 and "flash=retried" in retried.headers["location"]
        again = await alice.get(retried.headers["location"])
        assert "The delivery is queued again." in again.text and "No dead deliveries." in again.text
        message = await svc.repo.get_outbox(dead)
        assert message is not None and message.status is OutboxStatus.PENDING
        twice = await alice.post(f"/deliveries/{dead}/retry", data={"csrf": csrf(page.text)})
        assert "flash=not_dead" in twice.headers["location"]
        missing = await alice.post("/deliveries/msg_nope/retry", data={"csrf": csrf(page.text)})
        assert "flash=no_delivery" in missing.headers["location"]
        events = [r.event.event for r in await svc.repo.audit_records(actor="web:alice")]
        assert "delivery_retried" in events


async def test_dead_card_posts_show_on_the_dashboard_and_can_be_retried(
    app: Any, agent: httpx.AsyncClient, svc: Services, clock: ManualClock
) -> None:
    rid = await submit(agent, LOW)
    now = clock.now()
    post = OutboxMessage(
        id=new_id("msg", now),
        kind=OutboxKind.POST_CARD,
        request_id=rid,
        payload={"channel": "slack", "target": "C0GONE", "tier": "junior"},
        created_at=now,
        next_attempt_at=now,
    )
    await svc.repo.apply(Change(outbox=(post,)))
    [claimed] = await svc.repo.claim_outbox("test", now, timedelta(minutes=1), 50)
    refused = OutboxResult(OutboxStatus.DEAD, error="Slack chat.postMessage: channel_not_found")
    await svc.repo.finish_outbox(claimed.id, "test", refused)
    edit = OutboxMessage(
        id=new_id("msg", now),
        kind=OutboxKind.UPDATE_CARDS,
        request_id=rid,
        payload={"version": 2},
        created_at=now,
        next_attempt_at=now,
    )
    await svc.repo.apply(Change(outbox=(edit,)))
    [claimed] = await svc.repo.claim_outbox("test", now, timedelta(minutes=1), 50)
    teams_error = (
        "Teams update_activity failed with HTTP 400: (BadSyntax) Activity resulted into "
        "multiple skype activities"
    )
    await svc.repo.finish_outbox(
        claimed.id, "test", OutboxResult(OutboxStatus.DEAD, error=teams_error)
    )
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        assert "Cards and alerts that could not be posted or edited" in page.text
        assert post.id in page.text and "channel_not_found" in page.text
        assert edit.id in page.text and "update_cards" in page.text
        assert "Activity resulted into multiple skype activities" in page.text
        retried = await alice.post(f"/deliveries/{post.id}/retry", data={"csrf": csrf(page.text)})
        assert "flash=retried" in retried.headers["location"]
    again = await svc.repo.get_outbox(post.id)
    assert again is not None and again.status is OutboxStatus.PENDING


async def test_dashboard_lists_active_and_cleared_alerts(
    app: Any, agent: httpx.AsyncClient, svc: Services, clock: ManualClock
) -> None:
    for _ in range(12):
        await submit(agent, LOW)
    watch = svc.watch
    await watch.evaluate()
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        assert 'data-code="escalation_high"' in page.text
        assert "Warning sign: escalation high" in page.text and "12 of 12" in page.text
    clock.advance(timedelta(days=2))  # the burst leaves the window (and alice's session ends)
    await watch.evaluate()
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        assert "No active alerts" in page.text
        assert "Recently cleared" in page.text and "Cleared: escalation high" in page.text


async def test_only_the_top_tier_may_stop_and_start_agents(app: Any, svc: Services) -> None:
    async with as_reviewer(app, "jan") as jan:
        page = await jan.get("/dashboard")
        assert "Only reviewers of the top tier (manager)" in page.text
        assert "Stop invoice-bot" not in page.text
        refused = await jan.post(
            "/agents/invoice-bot/stop", data={"csrf": csrf(page.text), "reason": "x"}
        )
        assert refused.status_code == 403
        assert "only reviewers of tier manager may stop or start agents" in refused.text
    assert await svc.repo.agent_state("invoice-bot") is None
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        stopped = await alice.post(
            "/agents/invoice-bot/stop", data={"csrf": csrf(page.text), "reason": "runaway"}
        )
        assert stopped.status_code == 303
        shown = await alice.get(stopped.headers["location"])
        assert "The agent is stopped" in shown.text and "Start invoice-bot" in shown.text
        agent_state = await svc.repo.agent_state("invoice-bot")
        assert agent_state is not None and agent_state.stopped and agent_state.by == "web:alice"
        started = await alice.post("/agents/invoice-bot/start", data={"csrf": csrf(page.text)})
        assert "flash=started" in started.headers["location"]
        unknown = await alice.post("/agents/ghost/stop", data={"csrf": csrf(page.text)})
        assert "flash=no_agent" in unknown.headers["location"]
    final = await svc.repo.agent_state("invoice-bot")
    assert final is not None and not final.stopped
    events = [r.event for r in await svc.repo.audit_records(actor="web:alice")]
    assert [(e.event, e.channel) for e in events] == [("stopped", "web"), ("started", "web")]


# -- audit ------------------------------------------------------------------------------------


async def test_audit_search_exports_and_chain_check(
    app: Any, agent: httpx.AsyncClient, svc: Services, clock: ManualClock, tmp_path: Path
) -> None:
    first = await submit(agent, PAYMENT)
    second = await submit(agent, LOW)
    async with as_reviewer(app, "alice") as alice:
        await vote(alice, second, "approve", "ok")
        page = await alice.get("/audit")
        assert page.status_code == 200 and "Hash chain intact" in page.text
        by_request = await alice.get("/audit", params={"request": first})
        assert first in by_request.text and f'href="/requests/{second}"' not in by_request.text
        by_reviewer = await alice.get("/audit", params={"reviewer": "web:alice"})
        assert "2 matching events" in by_reviewer.text and "resolved" in by_reviewer.text
        high = await alice.get("/audit", params={"risk": "high"})
        assert f'href="/requests/{second}"' not in high.text
        today = clock.now().date().isoformat()
        dated = await alice.get("/audit", params={"since": today, "until": today})
        assert "0 matching" not in dated.text
        tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()
        future = await alice.get("/audit", params={"since": tomorrow})
        assert "0 matching events" in future.text
        past = await alice.get("/audit", params={"until": "2000-01-01"})
        assert "0 matching events" in past.text
        bad = await alice.get("/audit", params={"since": "yesterday"})
        assert "Dates must be written as YYYY-MM-DD." in bad.text

        records = await svc.repo.audit_records()
        jsonl = await alice.get("/audit/export", params={"format": "jsonl"})
        assert jsonl.status_code == 200
        assert jsonl.headers["content-type"].startswith("application/x-ndjson")
        assert "attachment" in jsonl.headers["content-disposition"]
        assert [json.loads(line) for line in jsonl.text.splitlines()] == [
            r.to_json() for r in records
        ]
        assert jsonl.text.splitlines()[0] == json.dumps(records[0].to_json(), sort_keys=True)
        as_csv = await alice.get("/audit/export", params={"format": "csv", "request": first})
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert tuple(rows[0]) == AUDIT_CSV_FIELDS
        assert {row["request_id"] for row in rows} == {first}
        assert (await alice.get("/audit/export", params={"format": "xml"})).status_code == 400
        bad_export = await alice.get("/audit/export", params={"format": "csv", "since": "x"})
        assert bad_export.status_code == 400

        db = tmp_path / "signoff.db"
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
        broken = await alice.get("/audit")
        assert "Hash chain BROKEN at event 2" in broken.text
    async with browser(app) as anonymous:
        assert (await anonymous.get("/audit/export?format=csv")).status_code == 303
        assert (await anonymous.get("/dashboard")).status_code == 303
        assert (await anonymous.get(f"/requests/{first}")).status_code == 303


# -- the embedded default's built-in admin ----------------------------------------------------


async def test_the_one_time_link_signs_in_once(repo_factory: RepoFactory) -> None:
    services = await build_services(
        config(web=False), repo=await repo_factory(), start_scheduler=False
    )
    async with services.stack:
        link = await issue_login_link(services)
        assert link.startswith("http://127.0.0.1:8000/login/token/")
        app = make_app(services)
        path = link.removeprefix("http://127.0.0.1:8000")
        async with browser(app) as client:
            login_page = await client.get("/login")
            assert "one-time link" in login_page.text and 'name="password"' not in login_page.text
            page = await client.get(path)
            assert page.status_code == 200 and "Sign in as admin" in page.text
            assert page.headers["referrer-policy"] == "no-referrer"
            forged = await client.post(path, data={"csrf": "nope"})
            assert forged.status_code == 403
            signed = await client.post(path, data={"csrf": csrf(page.text)})
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            home = await client.get("/")
            assert home.status_code == 200 and "(web:admin)" in home.text
            reuse = await client.post(path, data={"csrf": csrf(home.text)})
            assert reuse.status_code == 410
            # Nobody signs in as admin with a password.
            password = await client.post(
                "/login", data={"csrf": csrf(home.text), "username": "admin", "password": "x"}
            )
            assert password.status_code == 401
        async with browser(app) as other:
            used = await other.get(path)
            assert used.status_code == 410 and "already used" in used.text
            assert (await other.get("/")).status_code == 303


async def test_login_links_name_a_configured_reviewer(svc: Services) -> None:
    """With `web.reviewers`, the built-in admin does not exist, but a configured reviewer
    may be sent a link (after losing a password, in a second browser)."""
    with pytest.raises(ValueError, match=r"no web reviewer 'admin' \(one of: alice"):
        await issue_login_link(svc)
    link = await issue_login_link(svc, "alice")
    app = make_app(svc)
    async with browser(app) as client:
        page = await client.get(link.removeprefix("http://127.0.0.1:8000"))
        assert page.status_code == 200 and "Sign in as alice" in page.text
        path = link.removeprefix("http://127.0.0.1:8000")
        signed = await client.post(path, data={"csrf": csrf(page.text)})
        assert signed.status_code == 303
        assert "(web:alice)" in (await client.get("/")).text


async def test_the_inbox_can_be_mounted_before_the_services_exist(svc: Services) -> None:
    app = FastAPI()
    mount_web(app, env=SECRET_ENV)  # as create_app does; the lifespan sets the services later
    app.state.services = svc
    async with browser(app) as client:
        assert (await login(client, "alice")).status_code == 303
        assert (await client.get("/")).status_code == 200


async def test_static_files_are_served(app: Any) -> None:
    async with browser(app) as client:
        css = await client.get("/static/signoff.css")
        assert css.status_code == 200 and "svg.chart" in css.text
        js = await client.get("/static/signoff.js")
        assert js.status_code == 200 and "data-live-url" in js.text
