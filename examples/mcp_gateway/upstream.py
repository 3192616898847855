"""A small MCP server standing for any tool server an agent uses: a payments API with a
read (`get_balance`) and a write (`pay`). It knows nothing of Signoff.

Every payment it makes is appended to a JSON-lines ledger, so you can see what really ran
(and with which arguments). At start it also notes which `SIGNOFF_*` variables it can see:
behind the gateway, none.

    python -m examples.mcp_gateway.upstream --ledger ledger.jsonl            # stdio
    python -m examples.mcp_gateway.upstream --ledger ledger.jsonl --http 8765  # /mcp
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

BALANCES = {"ACC-1": 12_500.0, "ACC-2": 80.0}


class Balance(BaseModel):
    account: str
    balance: float
    currency: str


class Payment(BaseModel):
    invoice: str
    amount: float
    to: str
    paid_at: str


def build_server(ledger: Path) -> MCPServer:
    server = MCPServer(name="payments", instructions="Pay supplier invoices; read balances.")

    def record(entry: dict[str, object]) -> None:
        with ledger.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    @server.tool(description="The balance of an account (read-only).")
    def get_balance(account: str) -> Balance:
        if account not in BALANCES:
            raise ToolError(f"no account {account}")
        return Balance(account=account, balance=BALANCES[account], currency="EUR")

    @server.tool(description="Pay an invoice from ACC-1. Irreversible: the money leaves.")
    def pay(
        invoice: str,
        amount: Annotated[float, Field(gt=0, description="in EUR")],
        to: Annotated[str, Field(description="the payee")],
    ) -> Payment:
        payment = Payment(
            invoice=invoice, amount=amount, to=to, paid_at=datetime.now(UTC).isoformat()
        )
        record({"event": "paid", **payment.model_dump()})
        return payment

    record(
        {
            "event": "started",
            "signoff_variables": sorted(k for k in os.environ if k.upper().startswith("SIGNOFF_")),
        }
    )
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", default="mcp-ledger.jsonl", help="where payments are noted")
    parser.add_argument("--http", type=int, metavar="PORT", help="streamable HTTP at /mcp")
    args = parser.parse_args()
    server = build_server(Path(args.ledger))
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http)


if __name__ == "__main__":
    main()
