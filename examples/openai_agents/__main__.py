"""Run the payments agent: `python -m examples.openai_agents {pay,resume}`.

    python -m examples.openai_agents pay INV-8 120     # small: Signoff lets it through
    python -m examples.openai_agents pay INV-7 950     # large: paused, saved, process ends
    python -m examples.openai_agents resume            # after the verdict, in a new process

Reads SIGNOFF_API_KEY and SIGNOFF_URL (default http://127.0.0.1:8000). A paused run is
kept in `--state` (default openai-run.json) until `resume` finishes it. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents import RunConfig, Runner, RunResult, RunState

from examples.openai_agents.agent import build_agent
from signoff_client import AsyncSignoffClient
from signoff_client.openai_agents import SignoffApprovals

# The SDK would otherwise upload traces to OpenAI.
NO_TRACING = RunConfig(tracing_disabled=True)


def client() -> AsyncSignoffClient:
    key = os.environ.get("SIGNOFF_API_KEY")
    if not key:
        raise SystemExit("openai_agents: set SIGNOFF_API_KEY")
    return AsyncSignoffClient(os.environ.get("SIGNOFF_URL") or "http://127.0.0.1:8000", key)


def report(line: str) -> None:
    print(f"  [pay_invoice] {line}", flush=True)


async def settle(
    result: RunResult, approvals: SignoffApprovals, thread_id: str, saved: Path
) -> int:
    """Print the run's answer, or save the paused run and say what it waits for."""
    if not result.interruptions:
        await asyncio.to_thread(saved.unlink, missing_ok=True)
        print(f"agent: {result.final_output}")
        return 0
    answers = await approvals.submit(result.interruptions)
    run = {"thread_id": thread_id, "state": result.to_state().to_string()}
    await asyncio.to_thread(saved.write_text, json.dumps(run), "utf-8")
    for item, answer in zip(result.interruptions, answers, strict=True):
        print(
            f"paused: {item.tool_name}({item.arguments}) waits for a reviewer in Signoff "
            f"(request {answer.id}, {answer.risk} risk, tier {answer.tier}, "
            f"reasons: {', '.join(answer.reasons) or '-'})"
        )
    print(f"The run is saved in {saved}; this process ends here. After the verdict:")
    print("  python -m examples.openai_agents resume")
    return 0


async def pay(invoice: str, amount: float, saved: Path) -> int:
    thread_id = f"pay-{invoice}"
    async with client() as signoff:
        approvals = SignoffApprovals(signoff, thread_id=thread_id)
        agent = build_agent(approvals, report)
        result = await Runner.run(agent, f"Pay {invoice}: {amount:.2f} USD", run_config=NO_TRACING)
        return await settle(result, approvals, thread_id, saved)


async def resume(saved: Path, wait: float) -> int:
    run: dict[str, Any] = json.loads(await asyncio.to_thread(saved.read_text, "utf-8"))
    async with client() as signoff:
        approvals = SignoffApprovals(signoff, thread_id=run["thread_id"])
        agent = build_agent(approvals, report)
        state = await RunState.from_string(agent, run["state"])
        for item in state.get_interruptions():
            detail = await approvals.verdict(item, wait_for=wait)
            if detail.status == "pending":
                print(f"still waiting for a reviewer in Signoff (request {detail.id})")
                return 3
        state = await approvals.resolve(state)
        result = await Runner.run(agent, state, run_config=NO_TRACING)
        return await settle(result, approvals, run["thread_id"], saved)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.openai_agents")
    parser.add_argument(
        "--state", type=Path, default=Path("openai-run.json"), help="the saved run (%(default)s)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("pay", help="ask the agent to pay an invoice")
    ask.add_argument("invoice", help="e.g. INV-7")
    ask.add_argument("amount", type=float, help="in USD, e.g. 950")
    later = sub.add_parser("resume", help="resume the saved run with Signoff's verdict")
    later.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait this long for it"
    )
    args = parser.parse_args(argv)
    if args.command == "pay":
        if args.state.exists():
            print(f"A paused run is saved in {args.state}: resume it first (or use --state)")
            return 2
        return asyncio.run(pay(args.invoice, args.amount, args.state))
    if not args.state.exists():
        print(f"No paused run in {args.state}")
        return 2
    return asyncio.run(resume(args.state, args.wait))


if __name__ == "__main__":
    sys.exit(main())
