"""The payments agent: one tool, `pay_invoice`, gated by Signoff, and a stand-in model.

The model is the SDK's own `ScriptedModel`, each turn answered by `clerk`, a few lines that
do what an LLM would here: turn "Pay INV-7: 950 USD" into a `pay_invoice` call, call again
with the arguments a reviewer approved, and report the tool's answer. No network, no key;
give `Agent` a model name instead (`model="gpt-4.1"`, with OPENAI_API_KEY set) for a real one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from agents import Agent, function_tool
from agents.items import TResponseOutputItem
from agents.testing.model import (
    ModelCall,
    ModelStep,
    ScriptedModel,
    assistant_message,
    function_call,
)

from signoff_client.openai_agents import SignoffApprovals

ASK = re.compile(r"Pay (?P<invoice>\S+): (?P<amount>[0-9.]+)")
AGAIN = re.compile(r"exactly these arguments: (\{.*\})")


def _items(call: ModelCall) -> list[dict[str, Any]]:
    raw = call.input if isinstance(call.input, list) else [{"role": "user", "content": call.input}]
    return [item for item in raw if isinstance(item, dict)]


def clerk(call: ModelCall) -> list[TResponseOutputItem]:
    """One model turn, read from the conversation so far."""
    items = _items(call)
    outputs = [str(i["output"]) for i in items if i.get("type") == "function_call_output"]
    turn = f"call_{len(outputs) + 1}"
    if not outputs:
        said = " ".join(str(i.get("content")) for i in items if i.get("role") == "user")
        asked = ASK.search(said)
        if asked is None:
            return [assistant_message("Tell me which invoice to pay: 'Pay INV-7: 950 USD'.")]
        arguments = {"invoice": asked["invoice"], "amount": float(asked["amount"])}
        return [function_call("pay_invoice", arguments, call_id=turn)]
    again = AGAIN.search(outputs[-1])
    if again:  # a reviewer changed the arguments: call the tool again with theirs
        return [function_call("pay_invoice", json.loads(again.group(1)), call_id=turn)]
    if outputs[-1].startswith("paid "):
        return [assistant_message(f"Done: {outputs[-1]}.")]
    return [assistant_message(f"I did not pay. {outputs[-1]}")]


def build_agent(approvals: SignoffApprovals, on_payment: Callable[[str], None]) -> Agent:
    """The agent; `on_payment` is told of every payment the tool makes."""

    @function_tool(needs_approval=approvals.needs_approval("pay_invoice"))
    async def pay_invoice(invoice: str, amount: float) -> str:
        """Pay a supplier invoice. Irreversible: the money leaves."""
        done = f"paid {invoice}: {amount:,.2f} USD"
        on_payment(done)
        return done

    # A run takes at most a few turns: ask, (call again after a modify), report.
    model = ScriptedModel([ModelStep.respond(clerk) for _ in range(6)])
    return Agent(
        name="payer",
        instructions="Pay the invoices you are asked to pay, with pay_invoice.",
        model=model,
        tools=[pay_invoice],
    )
