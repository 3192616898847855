"""`signoff mcp gateway`: an MCP server in front of another one that asks Signoff before
every tool call it forwards.

The gateway lists the upstream's tools unchanged. Each `tools/call` becomes a Signoff
request (`action.kind = "mcp:<tool>"`, the arguments as the payload) and is forwarded only
when the answer allows it: at once when approved, after the verdict when held (the call
stays open, with progress notifications), with the reviewer's arguments after a modify.
Anything else (reject, cancel, expiry, the gateway's own wait limit, Signoff unreachable)
answers a tool error carrying the reason and the upstream tool is never called: the gateway
fails closed.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from signoff_client._client import AsyncSignoffClient, ConflictError, RequestDetail
from signoff_client.errors import SignoffError
from signoff_client.mcp._settings import (
    McpSetupError,
    SignoffAccess,
    check_agent,
    upstream_environment,
)
from signoff_client.mcp._verdicts import PROCEED, rationale, wait_final

log = logging.getLogger("signoff_client.mcp.gateway")

SUMMARY_MAX = 2000
"""The agent API's limit on `action.summary`."""


@dataclass(frozen=True)
class Upstream:
    """The MCP server behind the gateway: a command to run (stdio) or a streamable HTTP URL."""

    command: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise McpSetupError("give exactly one of --upstream CMD and --upstream-url URL")
        if self.command is not None and not shlex.split(self.command):
            raise McpSetupError("--upstream: the command is empty")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise McpSetupError(f"--upstream-url must be an http(s) URL, got {self.url!r}")


@dataclass(frozen=True)
class GatewayOptions:
    agent: str
    confidence: float = 1.0
    wait_timeout: float | None = None
    """Seconds a held call waits for the verdict; None: until Signoff ends the request."""
    tool_confidence: Mapping[str, float] = field(default_factory=dict)
    poll: float = 10.0
    """Seconds between progress notifications while a call is held."""

    def confidence_for(self, tool: str) -> float:
        return self.tool_confidence.get(tool, self.confidence)


def summary(tool: str, arguments: Mapping[str, Any]) -> str:
    """`tool(arguments as JSON)`, cut to the API's limit (the payload keeps them whole)."""
    text = f"MCP tool {tool}({json.dumps(arguments, ensure_ascii=False, sort_keys=True)})"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def refusal(
    text: str, *, request_id: str | None = None, status: str | None = None
) -> types.CallToolResult:
    meta = {"signoff": {"request_id": request_id, "status": status}} if request_id else None
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True, _meta=meta
    )


class Gateway:
    """One MCP connection's gateway: the upstream session, Signoff, and the thread id that
    groups this connection's requests in Signoff."""

    def __init__(
        self,
        signoff: AsyncSignoffClient,
        upstream: ClientSession,
        options: GatewayOptions,
        *,
        thread_id: str | None = None,
        instructions: str | None = None,
    ) -> None:
        self.signoff = signoff
        self.upstream = upstream
        self.options = options
        self.thread_id = thread_id or f"mcp-{uuid.uuid4().hex}"
        self.instructions = instructions
        self._known: set[str] = set()

    def server(self) -> Server[Any]:
        return Server(
            "signoff-gateway",
            version="1",
            instructions=self.instructions,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
        )

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = params.cursor if params is not None else None
        listed = await self.upstream.list_tools(
            params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
        )
        self._known.update(tool.name for tool in listed.tools)
        return listed

    async def _exists(self, name: str) -> bool:
        if name in self._known:
            return True
        cursor: str | None = None
        while True:  # the upstream's list may have grown since the client listed it
            listed = await self.upstream.list_tools(
                params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            self._known.update(tool.name for tool in listed.tools)
            cursor = listed.next_cursor
            if name in self._known or not cursor:
                return name in self._known

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        name, arguments = params.name, dict(params.arguments or {})
        if not await self._exists(name):
            raise MCPError(types.INVALID_PARAMS, f"unknown tool: {name}")
        try:
            answer = await self.signoff.request_approval(
                {"kind": f"mcp:{name}", "summary": summary(name, arguments), "payload": arguments},
                self.options.confidence_for(name),
                thread_id=self.thread_id,
                # Every call is its own request: the same call made twice is asked twice.
                idempotency_key=f"mcp_{uuid.uuid4().hex}",
            )
        except SignoffError as exc:
            log.warning("not forwarding %s: Signoff could not be asked: %s", name, exc)
            return refusal(f"Not executed: Signoff could not be asked about {name}: {exc}")
        log.info("%s: %s is %s", name, answer.id, answer.status)
        if answer.status == "approved":
            return await self._forward(name, arguments)
        timed_out = False
        try:
            if answer.status == "rejected":
                detail = await self.signoff.get(answer.id)
            else:
                detail, timed_out = await self._hold(ctx, answer.id)
        except SignoffError as exc:
            return refusal(
                f"Not executed: Signoff request {answer.id} for {name} could not be followed: "
                f"{exc}",
                request_id=answer.id,
            )
        if detail.status in PROCEED:
            # After a modify the reviewer's payload is what runs: it is what they approved.
            return await self._forward(name, dict(detail.current_action.payload))
        why = rationale(detail) or "no rationale given"
        if timed_out and detail.status == "cancelled":
            why = f"no verdict within the gateway's wait limit ({self.options.wait_timeout:g} s)"
        return refusal(
            f"Not executed: Signoff request {detail.id} for {name} is {detail.status}. "
            f"Rationale: {why}",
            request_id=detail.id,
            status=detail.status,
        )

    async def _hold(
        self, ctx: ServerRequestContext[Any], request_id: str
    ) -> tuple[RequestDetail, bool]:
        """Wait for the verdict with the MCP call open; a call the client gives up on, or one
        that outlives `--wait-timeout`, withdraws its request so nobody approves it later."""
        started = time.monotonic()

        async def progress(waited: float, line: str) -> None:
            await ctx.session.report_progress(waited, self.options.wait_timeout, line)

        await progress(0.0, f"held for approval in Signoff: {request_id}")
        try:
            detail = await wait_final(
                self.signoff,
                request_id,
                within=self.options.wait_timeout,
                progress=progress,
                poll=self.options.poll,
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await self._withdraw(request_id)
            raise
        if detail.is_final:
            return detail, False
        log.info("%s: no verdict after %.0f s, withdrawing", request_id, time.monotonic() - started)
        return await self._withdraw(request_id), True

    async def _withdraw(self, request_id: str) -> RequestDetail:
        try:
            detail = await self.signoff.cancel(request_id)
        except ConflictError:
            # Decided in the meantime: that verdict stands and is acted on.
            return await self.signoff.get(request_id)
        return detail

    async def _forward(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self.upstream.call_tool(name, arguments)


@asynccontextmanager
async def connect_upstream(upstream: Upstream) -> AsyncIterator[ClientSession]:
    """An MCP client session with the upstream, to be initialized by the caller. A command
    is run with the gateway's environment minus every `SIGNOFF_*` variable."""
    if upstream.command is not None:
        argv = shlex.split(upstream.command)
        parameters = StdioServerParameters(
            command=argv[0], args=argv[1:], env=upstream_environment()
        )
        transport = stdio_client(parameters, errlog=sys.stderr)
    else:
        assert upstream.url is not None
        transport = streamable_http_client(upstream.url)
    async with transport as (read, write), ClientSession(read, write) as session:
        yield session


async def run_gateway(access: SignoffAccess, upstream: Upstream, options: GatewayOptions) -> None:
    """Serve the gateway on stdin/stdout until the MCP client closes it."""
    async with access.client() as signoff:
        await check_agent(signoff, options.agent)
        async with connect_upstream(upstream) as session:
            initialized = await session.initialize()
            gateway = Gateway(signoff, session, options, instructions=initialized.instructions)
            server = gateway.server()
            log.info("gateway for agent %s, thread %s", options.agent, gateway.thread_id)
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())


__all__ = [
    "Gateway",
    "GatewayOptions",
    "Upstream",
    "connect_upstream",
    "run_gateway",
    "summary",
]
