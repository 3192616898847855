"""A Restate service (restate-sdk) that pays an invoice only after Signoff's verdict
completes its awakeable: the shape docs/agents.md shows for the `restate` resume target."""

from __future__ import annotations

from typing import Any

import httpx
import restate

payments = restate.Service("payments")


@payments.handler()
async def pay(ctx: restate.Context, order: dict[str, Any]) -> dict[str, Any]:
    awakeable_id, verdict = ctx.awakeable(type_hint=dict)

    async def ask_signoff() -> str:
        async with httpx.AsyncClient(base_url=order["signoff_url"]) as api:
            answer = await api.post(
                "/v1/requests",
                headers={
                    "authorization": f"Bearer {order['key']}",
                    "idempotency-key": f"restate-{awakeable_id}",
                },
                json={
                    "thread_id": order["thread_id"],
                    "action": {
                        "kind": "payment",
                        "summary": f"Pay {order['invoice']}",
                        "payload": {"invoice": order["invoice"], "amount": order["amount"]},
                    },
                    "confidence": 0.95,
                    "amount": order["amount"],
                    "labels": {"restate_awakeable_id": awakeable_id},
                },
            )
            answer.raise_for_status()
            return str(answer.json()["id"])

    request_id = await ctx.run_typed("ask signoff", ask_signoff)
    try:
        decided = await verdict
    except restate.TerminalError as denied:
        return {"request": request_id, "paid": None, "denied": denied.message}
    paid = decided["action"]["payload"] if decided["approved"] else None
    return {"request": request_id, "paid": paid, "verdict": decided}


app = restate.app(services=[payments], protocol="request_response")
