"""A graph for the real `langgraph dev` server: it pays an invoice after Signoff's gate.

Loaded by the LangGraph server from its own venv (scripts/ensure-langgraph), so it imports
only langgraph and signoff_client. The server supplies the checkpointer and the thread;
the gate's `interrupt()` pauses the thread until Signoff's `langgraph_server` resume target
posts the run that resumes it. SIGNOFF_URL and SIGNOFF_API_KEY come from the server's
environment.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from signoff_client import AsyncSignoffClient
from signoff_client.langgraph import SignoffGate


class Payment(TypedDict, total=False):
    invoice: str
    amount: float
    verdict: dict[str, Any]
    paid: dict[str, Any] | None


async def gate(state: Payment) -> dict[str, Any]:
    async with AsyncSignoffClient(os.environ["SIGNOFF_URL"], os.environ["SIGNOFF_API_KEY"]) as c:
        verdict = await SignoffGate(c).ask(
            {
                "kind": "payment",
                "summary": f"Pay {state['invoice']}: {state['amount']:,.2f} USD",
                "payload": {"invoice": state["invoice"], "amount": state["amount"]},
            },
            0.9,
            amount=state["amount"],
            currency="USD",
        )
    return {"verdict": verdict.model_dump(mode="json")}


async def pay(state: Payment) -> dict[str, Any]:
    verdict = state["verdict"]
    return {"paid": verdict["action"]["payload"] if verdict["approved"] else None}


builder = StateGraph(Payment)
builder.add_node("gate", gate)
builder.add_node("pay", pay)
builder.add_edge(START, "gate")
builder.add_edge("gate", "pay")
builder.add_edge("pay", END)
graph = builder.compile()
