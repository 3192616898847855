"""Approve + allow similar in Teams: the card's ShowCard prefilled from the item, the
`allow_similar` invoke that approves it and grants a standing approval, and the refusals
that record nothing. Teams-shaped invokes (auth none) against Signoff on loopback, its
Bot Connector calls answered by the fake connector."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.integration.test_teams import (  # the Teams world and its fixtures
    ALICE,
    BOB,
    KEY,
    OWNER,
    REFUND,
    Teams,
    _actions,
    agent,  # noqa: F401
    agent_server,  # noqa: F401
    banner,
    connector,  # noqa: F401
    connector_server,  # noqa: F401
    live,
    teams,  # noqa: F401
    teams_db,  # noqa: F401
)
from tests.integration.test_teams_questions import _all_inputs
from tests.unit.teams.schema import assert_adaptive_card

ACME: dict[str, Any] = {
    **REFUND,
    "action": {
        "kind": "refund",
        "summary": "Refund order 991 to ACME",
        "payload": {"order": 991, "customer": "ACME"},
    },
    "amount": 39.2,
}
PREFILLED = 'amount <= 40.0 && action.payload.customer == "ACME"'
AGENT = {"Authorization": f"Bearer {KEY}"}


def similar_inputs(card: dict[str, Any]) -> dict[str, Any]:
    """The values the "Approve + allow similar…" form shows, by input id."""
    [show] = [a for a in _actions(card) if a.get("title") == "Approve + allow similar…"]
    assert show["type"] == "Action.ShowCard"
    [submit] = show["card"]["actions"]
    assert (submit["type"], submit["verb"]) == ("Action.Execute", "allow_similar")
    return {k: v.get("value", "") for k, v in _all_inputs(show["card"]).items()}


async def allow(world: Teams, rid: str, user: str | None, **typed: str) -> dict[str, Any]:
    """`user` clicks "Approve + allow similar" with the form as the card on screen fills it
    (Teams sends every input of the card), `typed` over it; the card that comes back."""
    shown = similar_inputs(world.connector.card(world.thread(rid)))
    _, card = await world.click(rid, "allow_similar", user, **{**shown, **typed})
    return card


async def nothing_recorded(world: Teams, rid: str, audited: int) -> None:
    got = await world.request(rid)
    assert got["status"] == "pending" and got["votes"] == []
    assert await world.svc.repo.standing_approvals() == []
    assert len(await world.svc.repo.audit_records(request_id=rid)) == audited


async def test_approve_and_allow_similar_from_the_card(teams_db: Teams) -> None:  # noqa: F811
    rid = await teams_db.submit(ACME)
    await teams_db.drain()
    posted = teams_db.connector.card(teams_db.thread(rid))
    assert_adaptive_card(posted)
    form = similar_inputs(posted)
    assert form == {"when": PREFILLED, "ttl": "2h", "max_uses": "10", "reason": ""}
    audited = len(await teams_db.svc.repo.audit_records(request_id=rid))

    card = await allow(teams_db, rid, ALICE, when="amount <=", reason="Courier lost the parcels")
    assert banner(card).startswith("Not recorded. Condition: The condition does not compile")
    assert similar_inputs(card)["when"] == "amount <="  # what was typed is kept
    assert similar_inputs(card)["reason"] == "Courier lost the parcels"
    card = await allow(teams_db, rid, ALICE, ttl="soon", reason="Courier")
    assert banner(card).startswith("Not recorded. For how long: ")
    assert "soon" in banner(card) and live(card)
    card = await allow(teams_db, rid, ALICE, ttl="45d", reason="Courier")
    assert banner(card) == "Not recorded. For how long: Must be above zero and at most 30d."
    await nothing_recorded(teams_db, rid, audited)
    await teams_db.drain()
    assert teams_db.connector.updates == []  # refusals change no one's card

    edited = 'action.payload.customer == "ACME"'
    _, card = await teams_db.click(
        rid,
        "allow_similar",
        ALICE,
        when=edited,
        ttl="90m",
        max_uses="3",
        reason="Courier lost the parcels",
    )
    [grant] = await teams_db.svc.repo.standing_approvals()
    assert banner(card) == (
        "Recorded: approved. Requests like it are approved in your name for 90m, at most "
        f"3 times (standing approval {grant.id})."
    )
    assert not live(card)
    assert (grant.grantor, grant.agent_id, grant.kind) == (
        "teams:aad-alice",
        "invoice-bot",
        "refund",
    )
    assert (grant.when, grant.max_uses, grant.reason) == (edited, 3, "Courier lost the parcels")
    assert grant.expires_at - grant.created_at == timedelta(minutes=90)
    got = await teams_db.request(rid)
    assert got["status"] == "approved"
    [vote] = got["votes"]
    assert (vote["reviewer"], vote["channel"]) == ("teams:aad-alice", "teams")
    assert vote["rationale"] == "approved and allowed similar: Courier lost the parcels"
    await teams_db.drain()
    assert not live(teams_db.connector.card(teams_db.thread(rid)))  # everyone's card is final

    followed = await teams_db.http.post(
        "/v1/requests", json={**ACME, "thread_id": "lg-8", "amount": 35}, headers=AGENT
    )
    assert followed.status_code == 201
    assert followed.json()["status"] == "approved"
    assert followed.json()["standing_approval"] == grant.id
    other = {**ACME, "thread_id": "lg-9", "action": {**ACME["action"], "payload": {"order": 7}}}
    unlike = await teams_db.http.post("/v1/requests", json=other, headers=AGENT)
    assert unlike.json()["status"] == "pending"


async def test_refused_clickers_record_nothing(teams: Teams) -> None:  # noqa: F811
    rid = await teams.submit(ACME)
    await teams.drain()
    audited = len(await teams.svc.repo.audit_records(request_id=rid))
    reason = {"reason": "Courier lost the parcels"}
    card = await allow(teams, rid, OWNER, **reason)
    assert banner(card).startswith("Not recorded. You own agent invoice-bot")
    card = await allow(teams, rid, None, **reason)
    assert "Teams did not say who you are" in banner(card)
    card = await allow(teams, rid, BOB, reason=" ")
    assert banner(card).startswith("Not recorded. Reason: A reason is required")
    await nothing_recorded(teams, rid, audited)

    bad = await teams.post(
        teams.invoke(rid, "allow_similar", BOB, data={"tier": "junior", **reason})
    )
    assert bad.status_code == 400 and "data.request_id" in bad.text
    missing = await teams.post(
        teams.invoke(rid, "allow_similar", BOB, data={"request_id": "req_none", **reason})
    )
    assert missing.status_code == 404
    await nothing_recorded(teams, rid, audited)


async def test_only_items_a_grant_could_cover_offer_it(teams: Teams) -> None:  # noqa: F811
    two = await teams.submit({**ACME, "thread_id": "lg-2", "reversible": False})
    await teams.drain()
    card = teams.connector.card(teams.thread(two))
    assert "allow_similar" not in json.dumps(card)
    _, answer = await teams.click(two, "approve", ALICE)
    assert "Approve + allow similar" not in json.dumps(answer)
