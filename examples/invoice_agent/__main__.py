"""Run the invoice agent: `python -m examples.invoice_agent {process,serve,show,config}`.

Ports come from two environment variables, read by every command here and by
`signoff serve` itself: SIGNOFF_PORT (Signoff, default 8000) and INVOICE_AGENT_PORT (the
agent's resume receiver, default 9000). Also read: SIGNOFF_URL (default
http://127.0.0.1:$SIGNOFF_PORT), SIGNOFF_API_KEY and, for `serve`,
INVOICE_AGENT_WEBHOOK_SECRET. See README.md beside this file for the walk-through.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from examples.invoice_agent.graph import InvoiceState, build_graph, describe, thread_id
from signoff_client._client import AsyncSignoffClient
from signoff_client.hitl import GATE_KEY, answer_for, verdict_from_webhook
from signoff_client.langgraph import SignoffGate

DEFAULT_DB = "invoice_agent.db"
CONFIG = Path(__file__).with_name("signoff.yaml")


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"invoice_agent: {name} must be a port number, got {raw!r}")
    return int(raw)


def agent_port() -> int:
    return _port("INVOICE_AGENT_PORT", 9000)


def signoff_url() -> str:
    return os.environ.get("SIGNOFF_URL") or f"http://127.0.0.1:{_port('SIGNOFF_PORT', 8000)}"


def signoff_config() -> str:
    """signoff.yaml with the agent's callback on INVOICE_AGENT_PORT: Signoff's config file
    holds no variables, so the example writes the one it needs."""
    text = CONFIG.read_text(encoding="utf-8")
    default = "callback_url: http://127.0.0.1:9000/resume"
    if default not in text:
        raise SystemExit(f"invoice_agent: {CONFIG} no longer holds {default!r}")
    return text.replace(default, f"callback_url: http://127.0.0.1:{agent_port()}/resume")


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise SystemExit(f"invoice_agent: set {name}")
    return value


async def process(invoice: dict[str, Any], *, db: str, wait: float | None) -> int:
    config: Any = {"configurable": {"thread_id": thread_id(str(invoice["number"]))}}
    url, key = signoff_url(), _env("SIGNOFF_API_KEY")
    async with (
        AsyncSqliteSaver.from_conn_string(db) as saver,
        AsyncSignoffClient(url, key) as client,
    ):
        graph = build_graph(SignoffGate(client), saver)
        before = await graph.aget_state(config)
        if before.values:
            # Never pay an invoice twice: its thread already holds a run.
            print(describe(cast(InvoiceState, before.values)))
            return 0
        await graph.ainvoke({"invoice": invoice}, config)
        state = await graph.aget_state(config)
        if not state.interrupts:
            print(describe(cast(InvoiceState, state.values)))
            return 0
        waiting = state.interrupts[0]
        request = waiting.value
        print(
            f"{invoice['number']}: waiting for a reviewer in Signoff (request "
            f"{request[GATE_KEY]}, {request['risk']} risk, tier {request['tier']}, "
            f"reasons: {', '.join(request['reasons']) or '-'})"
        )
        if wait is None:
            print("The agent stops here; `serve` resumes the invoice when the verdict arrives.")
            return 0
        detail = await client.wait(request[GATE_KEY], timeout=wait)
        if not detail.is_final:
            print(f"{invoice['number']}: still pending after {wait:g} s")
            return 3
        body = {"type": "request.resolved", "data": detail.model_dump(mode="json")}
        answer = answer_for(waiting.value, verdict_from_webhook(body))
        await graph.ainvoke(Command(resume={waiting.id: answer}), config)
        print(describe(cast(InvoiceState, (await graph.aget_state(config)).values)))
        return 0


async def show(number: str, *, db: str) -> int:
    config: Any = {"configurable": {"thread_id": thread_id(number)}}
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        graph = build_graph(SignoffGate(AsyncSignoffClient("http://unused", "unused")), saver)
        state = await graph.aget_state(config)
        if not state.values:
            print(f"{number}: never processed")
            return 1
        print(describe(cast(InvoiceState, state.values)))
        print(json.dumps(state.values, indent=2, default=str))
        return 0


def serve(*, db: str, host: str, port: int) -> int:
    import uvicorn

    from examples.invoice_agent.app import create_app

    app = create_app(
        db_path=db,
        signoff_url=signoff_url(),
        api_key=_env("SIGNOFF_API_KEY"),
        webhook_secret=_env("INVOICE_AGENT_WEBHOOK_SECRET"),
        report=lambda line: print(line, flush=True),
    )
    print(f"Invoice agent listening on http://{host}:{port} (resume webhook: POST /resume)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.invoice_agent")
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite checkpoints (%(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("process", help="check an invoice and ask Signoff before paying it")
    run.add_argument("invoice", type=Path, help="an invoice JSON file")
    run.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="poll Signoff for the verdict and resume here (for agents without a callback)",
    )
    listen = sub.add_parser("serve", help="receive Signoff's resume webhooks")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, help="default $INVOICE_AGENT_PORT, else 9000")
    sub.add_parser(
        "config", help="print Signoff's config for this agent, callback on $INVOICE_AGENT_PORT"
    )
    look = sub.add_parser("show", help="where an invoice stands")
    look.add_argument("number", help="the invoice number, e.g. INV-123")
    args = parser.parse_args(argv)
    if args.command == "process":
        invoice = json.loads(args.invoice.read_text(encoding="utf-8"))
        return asyncio.run(process(invoice, db=args.db, wait=args.wait))
    if args.command == "show":
        return asyncio.run(show(args.number, db=args.db))
    if args.command == "config":
        sys.stdout.write(signoff_config())
        return 0
    return serve(db=args.db, host=args.host, port=args.port or agent_port())


if __name__ == "__main__":
    sys.exit(main())
