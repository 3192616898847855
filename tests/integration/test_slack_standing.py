"""Approve + allow similar in Slack: the card's button opens a modal prefilled from the item;
its submission approves the item and grants a standing approval, or records nothing and
says why. Real signed requests against the app on loopback, and the fake Slack Web API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.core.clock import ManualClock
from tests.conftest import RepoFactory
from tests.integration.test_slack import (
    KEY,
    MEDIUM,
    REVIEW,
    TWO_PERSON,
    World,
    ephemerals,
    open_world,
)
from tests.integration.test_slack_home import home_of, open_home, quiet
from tests.support.fake_slack import FakeSlack, action_ids
from tests.support.slack_payloads import form_body, home_block_actions, view_submission
from tests.unit.slack.test_cards import valid_view

ACME: dict[str, Any] = {
    **MEDIUM,
    "action": {
        "kind": "invoice",
        "summary": "Pay INV-9 to ACME",
        "payload": {"invoice": "INV-9", "vendor": "ACME"},
    },
    "amount": 119.5,
}
PREFILLED = 'amount <= 120.0 && action.payload.vendor == "ACME"'
ALLOW = "signoff_allow_similar"
AGENT = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    world = await open_world(repo_factory, slack, ManualClock())
    try:
        yield world
    finally:
        await world.close()


def initial(view: dict[str, Any]) -> dict[str, str]:
    """The text inputs as the modal opens with them, by block id."""
    return {
        block["block_id"]: block["element"].get("initial_value", "")
        for block in view["blocks"]
        if block["type"] == "input" and block["element"]["type"] == "plain_text_input"
    }


async def submit(w: World, uid: str, view: dict[str, Any], **edits: str) -> Any:
    """`uid` submits the modal with its prefilled inputs, `edits` typed over them."""
    body = view_submission(uid, view, typed={**initial(view), **edits})
    response = await w.send(form_body(body))
    assert response.status_code == 200, response.text
    await w.settle()
    return response


async def nothing_recorded(w: World, rid: str) -> None:
    got = await w.get(rid)
    assert got["status"] == "pending" and got["votes"] == []
    assert await w.svc.repo.standing_approvals() == []


async def test_approve_and_allow_similar_from_the_card(w: World) -> None:
    rid = await w.submit(ACME)
    await w.drain()
    assert action_ids(w.card(rid).blocks) == [
        "signoff_approve",
        "signoff_reject",
        "signoff_modify",
        ALLOW,
        "signoff_details",
    ]
    await w.click("U0AAA", ALLOW, rid)
    view = await w.opened(1)
    valid_view(view)
    assert view["callback_id"] == ALLOW
    assert json.loads(view["private_metadata"]) == {"request_id": rid, "max_risk": "medium"}
    assert initial(view) == {"when": PREFILLED, "ttl": "2h", "max_uses": "10", "reason": ""}
    assert view["external_id"].startswith(f"signoff:{w.card(rid).channel}:")

    bad_cel = await submit(w, "U0AAA", view, when="amount <=", reason="ERP sync is down")
    assert bad_cel.json()["response_action"] == "errors"
    [(field, problem)] = bad_cel.json()["errors"].items()
    assert field == "when" and problem.startswith("The condition does not compile: line 1, column")
    bad_ttl = await submit(w, "U0AAA", view, ttl="forever", max_uses="ten", reason="ERP down")
    assert set(bad_ttl.json()["errors"]) == {"ttl", "max_uses"}
    assert "forever" in bad_ttl.json()["errors"]["ttl"]
    too_long = await submit(w, "U0AAA", view, ttl="90d", reason="ERP sync is down")
    assert too_long.json()["errors"] == {"ttl": "Must be above zero and at most 30d."}
    no_reason = await submit(w, "U0AAA", view)
    assert no_reason.json()["errors"]["reason"].startswith("A reason is required")
    await nothing_recorded(w, rid)

    edited = 'action.payload.vendor == "ACME" && amount <= 150.0'
    done = await submit(
        w, "U0AAA", view, when=edited, ttl="3h", max_uses="5", reason="ERP sync is down"
    )
    assert done.content == b""  # the modal closes
    got = await w.get(rid)
    assert got["status"] == "approved"
    [vote] = got["votes"]
    assert (vote["reviewer"], vote["channel"]) == ("slack:U0AAA", "slack")
    assert vote["rationale"] == "approved and allowed similar: ERP sync is down"
    [grant] = await w.svc.repo.standing_approvals()
    assert (grant.grantor, grant.agent_id, grant.kind) == ("slack:U0AAA", "invoice-bot", "invoice")
    assert (grant.when, grant.max_uses, grant.max_risk.value) == (edited, 5, "medium")
    assert grant.expires_at - grant.created_at == timedelta(hours=3)
    assert grant.reason == "ERP sync is down"
    assert action_ids(w.card(rid).blocks) == []

    followed = await w.http.post("/v1/requests", json={**ACME, "thread_id": "lg-2"}, headers=AGENT)
    assert followed.status_code == 201
    assert followed.json()["status"] == "approved"
    assert followed.json()["standing_approval"] == grant.id
    bigger = await w.http.post(
        "/v1/requests", json={**ACME, "thread_id": "lg-3", "amount": 400}, headers=AGENT
    )
    assert bigger.json()["status"] == "pending"
    [used] = await w.svc.repo.standing_approvals()
    assert used.uses == 1

    # Submitted again by someone else once the item is decided: refused on top of the form.
    again = await submit(w, "U0BBB", view, reason="me too")
    redrawn = again.json()
    assert redrawn["response_action"] == "update"
    valid_view(redrawn["view"])
    refusal = redrawn["view"]["blocks"][1]["text"]["text"]
    assert refusal.startswith("🚫 *Refused:*") and refusal.endswith("Nothing was recorded.")
    assert initial(redrawn["view"])["reason"] == "me too"  # what was typed is kept
    assert len(await w.svc.repo.standing_approvals()) == 1


async def test_a_refused_grant_or_clicker_records_nothing(w: World) -> None:
    rid = await w.submit(ACME)
    await w.drain()
    # The owner of the agent may not approve its requests: told on the click, no modal.
    await w.click("U0OWNER", ALLOW, rid)
    await w.settle()
    [told] = ephemerals(w, "U0OWNER")
    assert told.args["text"].startswith("🚫 Not recorded.")
    assert w.slack.calls("views.open") == []

    await w.click("U0BBB", ALLOW, rid)
    view = await w.opened(1)
    # A forged risk the modal has no input for is refused on top of the form.
    forged = {**view, "private_metadata": json.dumps({"request_id": rid, "max_risk": "huge"})}
    refused = await submit(w, "U0BBB", forged, reason="ERP sync is down")
    assert refused.json()["response_action"] == "update"
    assert "Choose low, medium or high." in json.dumps(refused.json()["view"])
    stale = await submit(w, "U0BBB", {**view, "private_metadata": "{}"}, reason="x")
    assert stale.json()["errors"] == {
        "reason": "This form is out of date: use the card's button again."
    }
    await nothing_recorded(w, rid)


async def test_only_items_a_grant_could_cover_offer_it(w: World) -> None:
    two = await w.submit(TWO_PERSON)
    review = await w.submit(REVIEW)
    await w.drain()
    assert ALLOW not in action_ids(w.card(two).blocks)
    assert ALLOW not in action_ids(w.card(review).blocks)


async def test_the_app_home_offers_it_too(w: World) -> None:
    rid = await w.submit(ACME)
    await w.drain()
    await open_home(w, "U0AAA")
    home = home_of(w, "U0AAA")
    assert ALLOW in action_ids(home["blocks"])
    body = form_body(home_block_actions("U0AAA", home, ALLOW, rid))
    assert (await w.send(body)).status_code == 200
    view = await w.opened(1)
    assert "external_id" not in view  # no channel to answer in: a DM if needed
    await submit(w, "U0AAA", view, reason="month-end run")
    await quiet(w)
    assert (await w.get(rid))["status"] == "approved"
    [grant] = await w.svc.repo.standing_approvals()
    assert (grant.when, grant.max_uses) == (PREFILLED, 10)
    assert ALLOW not in action_ids(home_of(w, "U0AAA")["blocks"])
