"""Standing approvals in the web inbox: "Approve + allow similar" and the dashboard's list."""

from __future__ import annotations

from typing import Any

import httpx

from bot.core.domain import Status
from bot.server.services import Services
from tests.integration import test_web_inbox as inbox
from tests.integration.test_web_inbox import (
    TWO_PERSON,
    as_reviewer,
    csrf,
    state,
    submit,
    unescape,
)

# The inbox suite's fixtures: one service on SQLite, its app, and the agent's client.
backend, clock, svc, app, agent = inbox.backend, inbox.clock, inbox.svc, inbox.app, inbox.agent

ACME: dict[str, Any] = {
    "action": {
        "kind": "invoice",
        "summary": "Pay INV-9 to ACME",
        "payload": {"invoice": "INV-9", "vendor": "ACME"},
    },
    "confidence": 0.3,
    "amount": 119.5,
}
FORM = {"ttl": "2h", "max_uses": "10", "max_risk": "medium", "reason": "ERP sync is down"}


async def allow_similar(client: httpx.AsyncClient, rid: str, **fields: str) -> httpx.Response:
    page = await client.get(f"/requests/{rid}")
    return await client.post(
        f"/requests/{rid}/allow-similar", data={"csrf": csrf(page.text), **FORM, **fields}
    )


async def test_approve_and_allow_similar_from_an_item(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    rid = await submit(agent, ACME)
    async with as_reviewer(app, "alice") as alice:
        page = unescape((await alice.get(f"/requests/{rid}")).text)
        assert "Approve + allow similar" in page
        assert 'amount &lt;= 120.0 &amp;&amp; action.payload.vendor == "ACME"' in page

        bad = await allow_similar(alice, rid, when="amount <=")
        assert bad.status_code == 422
        assert "The condition does not compile: line 1, column" in unescape(bad.text)
        assert "amount &lt;=" in bad.text  # what was typed is kept
        no_reason = await allow_similar(alice, rid, when="", reason=" ")
        assert no_reason.status_code == 422 and "A reason is required" in no_reason.text
        high = await allow_similar(alice, rid, max_risk="high")
        assert high.status_code == 409 and "--allow-high" in high.text
        assert (await state(svc, rid)).status is Status.PENDING
        assert await svc.repo.standing_approvals() == []

        done = await allow_similar(alice, rid, when='action.payload.vendor == "ACME"')
        assert done.status_code == 303, done.text
        item = await state(svc, rid)
        assert item.status is Status.APPROVED
        assert [(v.reviewer, v.channel) for v in item.votes] == [("web:alice", "web")]
        (grant,) = await svc.repo.standing_approvals()
        assert (grant.grantor, grant.kind, grant.max_uses) == ("web:alice", "invoice", 10)

        followed = await agent.post("/v1/requests", json=ACME)
        assert followed.json()["status"] == "approved"
        assert followed.json()["standing_approval"] == grant.id
        globex = {**ACME, "action": {**ACME["action"], "payload": {"vendor": "Globex"}}}
        assert (await agent.post("/v1/requests", json=globex)).json()["status"] == "pending"

        board = unescape((await alice.get("/dashboard")).text)
        assert grant.id in board and "1 / 10" in board and "ERP sync is down" in board
        assert 'action.payload.vendor == "ACME"' in board
        assert "Cost of oversight over the last" in board
        assert "Standing approvals saved about <strong>" in board

    async with as_reviewer(app, "jan") as jan:
        page = await jan.get("/dashboard")
        refused = await jan.post(f"/standing/{grant.id}/revoke", data={"csrf": csrf(page.text)})
        assert refused.status_code == 403 and "may revoke it" in refused.text
    async with as_reviewer(app, "alice") as alice:
        page = await alice.get("/dashboard")
        revoked = await alice.post(f"/standing/{grant.id}/revoke", data={"csrf": csrf(page.text)})
        assert revoked.headers["location"] == "/dashboard?flash=grant_revoked#standing"
        shown = await alice.get(revoked.headers["location"])
        assert "The standing approval is revoked" in shown.text
        assert "No active standing approvals" in shown.text
        again = await alice.post(f"/standing/{grant.id}/revoke", data={"csrf": csrf(page.text)})
        assert again.headers["location"] == "/dashboard?flash=no_grant#standing"
    assert (await agent.post("/v1/requests", json=ACME)).json()["status"] == "pending"
    events = [r.event.event for r in await svc.repo.audit_records(actor="web:alice")]
    assert events.count("standing_granted") == 1 and events.count("standing_revoked") == 1


async def test_no_allow_similar_where_a_grant_could_not_apply(
    app: Any, agent: httpx.AsyncClient, svc: Services
) -> None:
    two = await submit(agent, TWO_PERSON)
    low = await submit(agent, ACME)
    async with as_reviewer(app, "alice") as alice:
        assert "Approve + allow similar" not in (await alice.get(f"/requests/{two}")).text
        page = await alice.get(f"/requests/{two}")
        forged = await alice.post(
            f"/requests/{two}/allow-similar", data={"csrf": csrf(page.text), **FORM}
        )
        assert forged.status_code == 409 and "awaiting one approval" in forged.text
    async with as_reviewer(app, "jan") as jan:  # junior: may not decide this senior item
        assert "Approve + allow similar" not in (await jan.get(f"/requests/{low}")).text
        page = await jan.get(f"/requests/{low}")
        forged = await jan.post(
            f"/requests/{low}/allow-similar", data={"csrf": csrf(page.text), **FORM}
        )
        assert forged.status_code == 409
    assert (await state(svc, two)).votes == () and (await state(svc, low)).votes == ()
    assert await svc.repo.standing_approvals() == []
