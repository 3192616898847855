"""An agent's question answered in Slack: the Answer button, the modal's answer checked against
the request's schema, and reject reasons picked from the request's options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.core.clock import ManualClock
from tests.conftest import RepoFactory
from tests.integration.test_slack import MEDIUM, World, action_ids, open_world, resumed
from tests.support.fake_slack import FakeSlack
from tests.support.slack_payloads import form_body, view_submission

ASKING: dict[str, Any] = {
    **MEDIUM,
    "question": "Which account should pay it?",
    "response_schema": {"type": "string", "enum": ["ops", "treasury"]},
    "reject_options": ["Duplicate invoice", "Wrong supplier"],
}


@pytest.fixture
async def w(repo_factory: RepoFactory, slack: FakeSlack) -> AsyncIterator[World]:
    world = await open_world(repo_factory, slack, ManualClock())
    try:
        yield world
    finally:
        await world.close()


async def submit_view(w: World, uid: str, view: dict[str, Any], **inputs: Any) -> Any:
    return await w.send(form_body(view_submission(uid, view, **inputs)))


async def test_an_answer_is_picked_in_the_modal_and_reaches_the_agent(w: World) -> None:
    rid = await w.submit(ASKING)
    await w.drain()
    card = w.card(rid)
    assert "signoff_respond" in action_ids(card.blocks)
    await w.click("U0AAA", "signoff_respond", rid)
    view = await w.opened(1)
    for block in view["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    [answer] = [b for b in view["blocks"] if b.get("block_id") == "response"]
    assert answer["element"]["type"] == "static_select"
    assert [o["value"] for o in answer["element"]["options"]] == ["ops", "treasury"]
    assert "Which account should pay it?" in str(view["blocks"])

    empty = await submit_view(w, "U0AAA", view)
    assert empty.json()["response_action"] == "errors"
    assert set(empty.json()["errors"]) == {"response"}
    await w.settle()
    assert (await w.get(rid))["votes"] == []

    done = await submit_view(w, "U0AAA", view, picked={"response": "treasury"})
    assert done.status_code == 200 and done.content == b""
    await w.settle()
    got = await w.get(rid)
    assert got["status"] == "approved" and got["response"] == "treasury"
    [body] = await resumed(w)
    assert body["data"]["response"] == "treasury"
    assert action_ids(w.card(rid).blocks) == []


async def test_a_reject_reason_is_picked_from_the_requests_options(w: World) -> None:
    rid = await w.submit(ASKING)
    await w.drain()
    await w.click("U0BBB", "signoff_reject", rid)
    view = await w.opened(1)
    [reason] = [b for b in view["blocks"] if b.get("block_id") == "reject_option"]
    assert [o["value"] for o in reason["element"]["options"]] == [
        "Duplicate invoice",
        "Wrong supplier",
    ]
    done = await submit_view(
        w, "U0BBB", view, picked={"reject_option": "Wrong supplier"}, rationale="ACME Ltd, not Inc"
    )
    assert done.content == b""
    await w.settle()
    got = await w.get(rid)
    assert got["status"] == "rejected"
    assert got["votes"][0]["rationale"] == "Wrong supplier: ACME Ltd, not Inc"
