"""An MCP client standing for the agent: it starts the gateway the way an MCP host (Claude
Desktop, an IDE, an agent framework) would, from a command line, and calls a tool.

    python -m examples.mcp_gateway tools
    python -m examples.mcp_gateway call get_balance '{"account": "ACC-1"}'
    python -m examples.mcp_gateway call pay '{"invoice": "INV-7", "amount": 120, "to": "Paper Co"}'

Needs SIGNOFF_API_KEY (and SIGNOFF_URL unless Signoff is at http://127.0.0.1:8000); the
gateway reads them, the upstream payments server never sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

AGENT = "mcp-agent"


def gateway_command(ledger: str) -> StdioServerParameters:
    signoff = str(Path(sys.executable).with_name("signoff"))
    upstream = f"{shlex.quote(sys.executable)} -m examples.mcp_gateway.upstream --ledger {ledger}"
    # The host hands the gateway its environment, Signoff's key included (SIGNOFF_*); the
    # gateway passes it on to the payments server without them.
    return StdioServerParameters(
        command=signoff,
        args=["mcp", "gateway", "--upstream", upstream, "--agent", AGENT],
        env=dict(os.environ),
    )


async def run(args: argparse.Namespace) -> int:
    async with (
        stdio_client(gateway_command(args.ledger)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        if args.command == "tools":
            for tool in (await session.list_tools()).tools:
                print(f"{tool.name}: {tool.description}")
            return 0

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            print(f"  ... {message} ({progress:.0f} s)", file=sys.stderr, flush=True)

        arguments: dict[str, Any] = json.loads(args.arguments)
        result = await session.call_tool(args.tool, arguments, progress_callback=on_progress)
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if result.is_error:
            print(f"{args.tool} refused: {text}")
            return 1
        shown = result.structured_content if result.structured_content is not None else text
        print(f"{args.tool} done: {json.dumps(shown, sort_keys=True)}")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.mcp_gateway")
    parser.add_argument("--ledger", default="mcp-ledger.jsonl", help="the upstream's ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tools", help="list the tools behind the gateway")
    call = sub.add_parser("call", help="call a tool through the gateway")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="the arguments as JSON")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
