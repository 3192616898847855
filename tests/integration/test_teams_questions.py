"""An agent's question answered in Teams: the Answer card with its input, the answer checked
against the request's schema, and reject reasons picked from the request's options."""

from __future__ import annotations

from typing import Any

from tests.integration.test_teams import (  # the Teams world and its fixtures
    ALICE,
    BOB,
    REFUND,
    Teams,
    agent,  # noqa: F401
    agent_server,  # noqa: F401
    banner,
    connector,  # noqa: F401
    connector_server,  # noqa: F401
    resumed,
    teams,  # noqa: F401
)

ASKING: dict[str, Any] = {
    **REFUND,
    "question": "How many units came back?",
    "response_schema": {"type": "integer", "minimum": 1},
    "reject_options": ["Outside the return window", "Damaged by the customer"],
}


def _all_inputs(card: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input.") and "id" in node:
                found[str(node["id"])] = node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


async def test_an_answer_is_checked_then_reaches_the_agent(
    teams: Teams,  # noqa: F811
) -> None:
    rid = await teams.submit(ASKING)
    await teams.drain()
    posted = teams.connector.card(teams.thread(rid))
    inputs = _all_inputs(posted)
    assert inputs["response"]["type"] == "Input.Text"
    assert inputs["reject_option"]["type"] == "Input.ChoiceSet"
    assert "How many units came back?" in str(posted)

    _, card = await teams.click(rid, "respond", ALICE, response="three")
    assert banner(card).startswith("Not recorded: the answer must be JSON")
    _, card = await teams.click(rid, "respond", ALICE, response="0")
    assert "does not match the question" in banner(card)
    assert (await teams.request(rid))["votes"] == []

    _, card = await teams.click(rid, "respond", ALICE, response=" 3 ", rationale="counted")
    got = await teams.request(rid)
    assert got["status"] == "approved" and got["response"] == 3
    await teams.drain()
    [payload] = await resumed(teams.agent)
    assert payload["data"]["response"] == 3
    assert payload["data"]["votes"][0]["verdict"] == "respond"


async def test_a_reject_reason_is_picked_from_the_options(
    teams: Teams,  # noqa: F811
) -> None:
    rid = await teams.submit(ASKING)
    await teams.drain()
    _, card = await teams.click(rid, "reject", BOB, reject_option="Damaged by the customer")
    assert "Recorded: rejected" in banner(card)
    got = await teams.request(rid)
    assert got["status"] == "rejected"
    assert got["votes"][0]["rationale"] == "Damaged by the customer"
