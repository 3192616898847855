"""Run the Temporal example: `python -m examples.temporal {worker,pay,result,config}`.

    python -m examples.temporal worker            # runs the workflows and activities
    python -m examples.temporal pay INV-7 950     # starts one, waits for its outcome
    python -m examples.temporal result INV-7      # how a payment ended (waits for it)

Reads TEMPORAL_ADDRESS (default 127.0.0.1:7233), SIGNOFF_URL (default
http://127.0.0.1:8000) and, for `worker`, SIGNOFF_API_KEY. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from examples.temporal.activities import PaymentActivities
from examples.temporal.workflow import TASK_QUEUE, PayInvoice

CONFIG = Path(__file__).with_name("signoff.yaml")
DEFAULT_ADDRESS = "127.0.0.1:7233"


def temporal_address() -> str:
    return os.environ.get("TEMPORAL_ADDRESS") or DEFAULT_ADDRESS


def workflow_id(number: str) -> str:
    return f"pay-{number}"


def signoff_config() -> str:
    """signoff.yaml with the resume target on TEMPORAL_ADDRESS: Signoff's config file holds
    no variables, so the example writes the one it needs."""
    address = temporal_address()
    if not re.fullmatch(r"[A-Za-z0-9.\-]+:[0-9]{1,5}", address):
        raise SystemExit(f"temporal: TEMPORAL_ADDRESS must be host:port, got {address!r}")
    text = CONFIG.read_text(encoding="utf-8")
    default = f"address: {DEFAULT_ADDRESS}"
    if default not in text:
        raise SystemExit(f"temporal: {CONFIG} no longer holds {default!r}")
    return text.replace(default, f"address: {address}")


async def worker() -> int:
    key = os.environ.get("SIGNOFF_API_KEY")
    if not key:
        raise SystemExit("temporal: set SIGNOFF_API_KEY")
    url = os.environ.get("SIGNOFF_URL") or "http://127.0.0.1:8000"
    activities = PaymentActivities(url, key, lambda line: print(line, flush=True))
    client = await Client.connect(temporal_address())
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[PayInvoice],
        activities=[activities.ask_signoff, activities.pay],
    ):
        print(f"Worker on {temporal_address()}, task queue {TASK_QUEUE!r} (Ctrl-C stops it)")
        sys.stdout.flush()
        await asyncio.Event().wait()
    return 0


async def asked(handle: WorkflowHandle[Any, Any], within: float = 30.0) -> dict[str, Any] | None:
    """Signoff's answer to the workflow's submit, once its activity has run."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        try:
            answer = await handle.query(
                PayInvoice.signoff_request, rpc_timeout=timedelta(seconds=5)
            )
        except RPCError:
            answer = None  # no worker has picked the workflow up yet
        if answer is not None:
            return dict(answer)
        await asyncio.sleep(0.2)
    return None


async def pay(number: str, amount: float, *, wait: bool) -> int:
    client = await Client.connect(temporal_address())
    try:
        handle = await client.start_workflow(
            PayInvoice.run,
            {"number": number, "amount": amount},
            id=workflow_id(number),
            task_queue=TASK_QUEUE,
            # Never pay an invoice twice: its workflow id is taken for good.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        print(
            f"{number} has a payment workflow already: python -m examples.temporal result {number}"
        )
        return 2
    answer = await asked(handle)
    if answer is None:
        print(f"{number}: Signoff not asked within 30 s; is the worker running?")
        return 1
    if answer["status"] == "pending":
        print(
            f"{number}: waiting for a reviewer in Signoff (request {answer['id']}, "
            f"{answer['risk']} risk, tier {answer['tier']}, "
            f"reasons: {', '.join(answer['reasons']) or '-'})",
            flush=True,
        )
    if not wait:
        print(f"The workflow waits in Temporal: python -m examples.temporal result {number}")
        return 0
    return await outcome(client.get_workflow_handle(workflow_id(number)), number)


async def result(number: str) -> int:
    client = await Client.connect(temporal_address())
    return await outcome(client.get_workflow_handle(workflow_id(number)), number)


async def outcome(handle: WorkflowHandle[Any, Any], number: str) -> int:
    ended: dict[str, Any] = await handle.result()
    by = f" by {ended['by']}" if ended["by"] else " by Signoff's policy, at once"
    why = f"{by}: {ended['rationale']}" if ended["rationale"] else by
    if ended["paid"] is None:
        print(f"{number} not paid: {ended['status']}{why} (request {ended['request']})")
        return 1
    amount = float(ended["paid"]["amount"])
    print(f"{number} paid: {amount:,.2f} USD ({ended['status']}{why})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.temporal")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the payment workflows and their activities")
    start = sub.add_parser("pay", help="start a payment workflow and wait for its outcome")
    start.add_argument("invoice", help="e.g. INV-7")
    start.add_argument("amount", type=float, help="in USD, e.g. 950")
    start.add_argument("--no-wait", action="store_true", help="exit once Signoff is asked")
    look = sub.add_parser("result", help="how a payment ended (waits until it has)")
    look.add_argument("invoice")
    sub.add_parser("config", help="print Signoff's config for a Temporal at $TEMPORAL_ADDRESS")
    args = parser.parse_args(argv)
    if args.command == "config":
        sys.stdout.write(signoff_config())
        return 0
    if args.command == "worker":
        try:
            return asyncio.run(worker())
        except KeyboardInterrupt:
            return 0
    if args.command == "pay":
        code = asyncio.run(pay(args.invoice, args.amount, wait=not args.no_wait))
    else:
        code = asyncio.run(result(args.invoice))
    # temporalio's runtime threads can abort a short-lived client process during interpreter
    # shutdown ("PyGILState_Release", temporalio/sdk-python issue 300): all is said, so skip
    # the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
