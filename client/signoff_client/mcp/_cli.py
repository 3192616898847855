"""The `mcp serve` and `mcp gateway` commands, shared by `signoff mcp ...` (the server's
CLI) and `signoff-mcp ...` (the agent SDK's own entry point).

This module imports no MCP SDK: the server's CLI builds its parser from it on every run,
and a missing SDK must be a clear message (exit 2), not an ImportError at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from signoff_client.errors import SignoffError

EXIT_SETUP = 2
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """`90`, `30s`, `15m`, `1h`, `2d` as seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 30s, 15m, 1h, 2d)")
    seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive, got {text!r}")
    return seconds


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def add_commands(mcp: argparse.ArgumentParser) -> None:
    """Add `serve` and `gateway` under `mcp` (an `mcp` subcommand or a whole program)."""
    sub = mcp.add_subparsers(dest="mcp_command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="MCP tools request_approval, wait_for_approval and get_approval for any MCP client",
        description="Serve Signoff's approval tools over MCP. Reads SIGNOFF_URL (default "
        "http://127.0.0.1:8000) and SIGNOFF_API_KEY; the key must be AGENT's.",
    )
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (default)")
    mode.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP at /mcp")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for --http")
    serve.add_argument("--agent", required=True, help="the agent SIGNOFF_API_KEY belongs to")
    serve.set_defaults(func=cmd_serve)

    gateway = sub.add_parser(
        "gateway",
        help="an MCP server in front of another that asks Signoff before every tool call",
        description="Serve the upstream MCP server's tools on stdin/stdout; each call is "
        "submitted to Signoff as action kind mcp:<tool> with the arguments as payload and "
        "forwarded only when approved (with the reviewer's arguments after a modify). Reads "
        "SIGNOFF_URL and SIGNOFF_API_KEY; the upstream never sees SIGNOFF_* variables.",
    )
    upstream = gateway.add_mutually_exclusive_group()
    upstream.add_argument("--upstream", metavar="CMD", help='a command to run, e.g. "npx srv"')
    upstream.add_argument("--upstream-url", metavar="URL", help="a streamable HTTP MCP server")
    gateway.add_argument("--agent", required=True, help="the agent SIGNOFF_API_KEY belongs to")
    gateway.add_argument(
        "--config",
        metavar="FILE",
        help="YAML with upstream, upstream_url, confidence, wait_timeout and "
        "tools: {NAME: {confidence: X}}; flags win",
    )
    gateway.add_argument(
        "--confidence", type=fraction, help="the confidence every call is submitted with (1.0)"
    )
    gateway.add_argument(
        "--wait-timeout",
        type=duration,
        metavar="D",
        help="give up on a held call after D (30s, 15m, 1h) and withdraw its request; "
        "default: wait until Signoff ends it",
    )
    gateway.set_defaults(func=cmd_gateway)


def _fail(message: str, code: int = EXIT_SETUP) -> int:
    print(f"signoff mcp: {message}", file=sys.stderr)
    return code


def _guarded(run: Callable[[], Any]) -> int:
    """Run a command, turning the foreseeable failures into a message and an exit code."""
    from signoff_client.mcp._settings import MISSING_SDK, McpSetupError

    try:
        run()
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "mcp":
            return _fail(MISSING_SDK)
        raise
    except McpSetupError as exc:
        return _fail(str(exc))
    except SignoffError as exc:
        return _fail(f"Signoff: {exc}", 1)
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    def run() -> None:
        from signoff_client.mcp._approvals import approval_server
        from signoff_client.mcp._settings import check_agent, signoff_access

        access = signoff_access()

        async def main() -> None:
            async with access.client() as signoff:
                await check_agent(signoff, args.agent)
                server = approval_server(signoff, agent=args.agent)
                if args.http is None:
                    await server.run_stdio_async()
                else:
                    print(
                        f"Signoff MCP tools on http://{args.host}:{args.http}/mcp",
                        file=sys.stderr,
                        flush=True,
                    )
                    await server.run_streamable_http_async(host=args.host, port=args.http)

        asyncio.run(main())

    return _guarded(run)


def _gateway_file(path: str) -> dict[str, Any]:
    from signoff_client.mcp._settings import McpSetupError

    try:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpSetupError(f"--config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise McpSetupError(f"--config {path}: not YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise McpSetupError(f"--config {path}: the top level must be a mapping")
    allowed = {"upstream", "upstream_url", "confidence", "wait_timeout", "tools"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise McpSetupError(
            f"--config {path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    return data


def _option(path: str, key: str, value: Any, parse: Callable[[str], float]) -> float:
    from signoff_client.mcp._settings import McpSetupError

    try:
        return parse(str(value))
    except argparse.ArgumentTypeError as exc:
        raise McpSetupError(f"--config {path}: {key}: {exc}") from exc


def gateway_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """The upstream and the options from the flags over the `--config` file."""
    from signoff_client.mcp._gateway import GatewayOptions, Upstream
    from signoff_client.mcp._settings import McpSetupError

    path = args.config
    data = _gateway_file(path) if path else {}
    flags_name_upstream = args.upstream is not None or args.upstream_url is not None
    command = args.upstream if flags_name_upstream else data.get("upstream")
    url = args.upstream_url if flags_name_upstream else data.get("upstream_url")
    confidence = args.confidence
    if confidence is None and "confidence" in data:
        confidence = _option(path, "confidence", data["confidence"], fraction)
    wait = args.wait_timeout
    if wait is None and data.get("wait_timeout") is not None:
        wait = _option(path, "wait_timeout", data["wait_timeout"], duration)
    per_tool: dict[str, float] = {}
    tools = data.get("tools") or {}
    if not isinstance(tools, dict):
        raise McpSetupError(f"--config {path}: tools must map tool names to settings")
    for name, settings in tools.items():
        if not isinstance(settings, dict) or set(settings) - {"confidence"}:
            raise McpSetupError(f"--config {path}: tools.{name}: only confidence may be set")
        if "confidence" in settings:
            key = f"tools.{name}.confidence"
            per_tool[str(name)] = _option(path, key, settings["confidence"], fraction)
    upstream = Upstream(
        command=str(command) if command is not None else None,
        url=str(url) if url is not None else None,
    )
    options = GatewayOptions(
        agent=args.agent,
        confidence=1.0 if confidence is None else confidence,
        wait_timeout=wait,
        tool_confidence=per_tool,
    )
    return upstream, options


def cmd_gateway(args: argparse.Namespace) -> int:
    def run() -> None:
        from signoff_client.mcp._gateway import run_gateway
        from signoff_client.mcp._settings import signoff_access

        upstream, options = gateway_settings(args)
        access = signoff_access()
        logging.basicConfig(
            level=logging.INFO,
            stream=sys.stderr,
            format="signoff-gateway %(levelname)s %(message)s",
        )
        # One line per request is httpx's INFO; the gateway logs each call's outcome itself.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        asyncio.run(run_gateway(access, upstream, options))

    return _guarded(run)


def build_parser(prog: str = "signoff-mcp") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Signoff for MCP: approval tools, and a gateway that asks first."
    )
    add_commands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
