"""Signoff for MCP agents (extra `signoff-client[mcp]`, the official `mcp` SDK).

- `signoff mcp serve` / `signoff-mcp serve`: the approval tools `request_approval`,
  `wait_for_approval` and `get_approval` for any MCP client (`approval_server`).
- `signoff mcp gateway` / `signoff-mcp gateway`: an MCP server in front of another that
  submits every tool call to Signoff first (`Gateway`, `run_gateway`).

Both read `SIGNOFF_URL` (default http://127.0.0.1:8000) and `SIGNOFF_API_KEY` and refuse
to start unless the key is `--agent`'s. Importing this package does not import the MCP SDK;
the names below load it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from signoff_client.mcp._cli import add_commands, build_parser, main
from signoff_client.mcp._settings import McpSetupError

if TYPE_CHECKING:
    from signoff_client.mcp._approvals import approval_server
    from signoff_client.mcp._gateway import (
        Gateway,
        GatewayOptions,
        Upstream,
        connect_upstream,
        run_gateway,
    )

_LAZY = {
    "approval_server": "signoff_client.mcp._approvals",
    "Gateway": "signoff_client.mcp._gateway",
    "GatewayOptions": "signoff_client.mcp._gateway",
    "Upstream": "signoff_client.mcp._gateway",
    "connect_upstream": "signoff_client.mcp._gateway",
    "run_gateway": "signoff_client.mcp._gateway",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'signoff_client.mcp' has no attribute {name!r}")


__all__ = [
    "Gateway",
    "GatewayOptions",
    "McpSetupError",
    "Upstream",
    "add_commands",
    "approval_server",
    "build_parser",
    "connect_upstream",
    "main",
    "run_gateway",
]
