"""An OpenAI Agents SDK agent whose `pay_invoice` tool Signoff approves, driven by the SDK's
own scripted model (no network). Run as a module it resumes a saved run in a fresh process:

    python -m tests.support.openai_agent STATE_FILE OUT_FILE URL KEY "final text"
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, RunState, function_tool
from agents.testing.model import ScriptedModel

from signoff_client import AsyncSignoffClient
from signoff_client.openai_agents import SignoffApprovals

THREAD = "conv-inv-7"
NO_TRACING = RunConfig(tracing_disabled=True)


def build(approvals: SignoffApprovals, model: ScriptedModel, paid: list[dict[str, Any]]) -> Agent:
    @function_tool(needs_approval=approvals.needs_approval("pay_invoice"))
    async def pay_invoice(invoice: str, amount: float) -> str:
        """Pay a supplier invoice."""
        paid.append({"invoice": invoice, "amount": amount})
        return f"paid {invoice}: {amount}"

    @function_tool(needs_approval=approvals.needs_approval("lookup_invoice"))
    async def lookup_invoice(invoice: str) -> str:
        """Look an invoice up."""
        paid.append({"looked_up": invoice})
        return f"{invoice}: 950 USD to ACME"

    return Agent(name="payer", model=model, tools=[pay_invoice, lookup_invoice])


async def resume(state_file: Path, out_file: Path, url: str, key: str, final: str) -> None:
    from agents.testing.model import assistant_message

    paid: list[dict[str, Any]] = []
    model = ScriptedModel([[assistant_message(final)]])
    async with AsyncSignoffClient(url, key) as client:
        approvals = SignoffApprovals(client, thread_id=THREAD)
        agent = build(approvals, model, paid)
        saved = await asyncio.to_thread(state_file.read_text)
        state = await RunState.from_string(agent, saved)
        state = await approvals.resolve(state, wait_for=30)
        result = await Runner.run(agent, state, run_config=NO_TRACING)
    # What the model read back about the paused call: the tool's output, or the rejection.
    last_input = model.calls[-1].input if model.calls else []
    outputs = [
        str(item.get("output"))
        for item in (last_input if isinstance(last_input, list) else [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    report = {"final_output": result.final_output, "paid": paid, "tool_outputs": outputs}
    await asyncio.to_thread(out_file.write_text, json.dumps(report))


if __name__ == "__main__":
    state_file, out_file, url, key, final = sys.argv[1:6]
    asyncio.run(resume(Path(state_file), Path(out_file), url, key, final))
