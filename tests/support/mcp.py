"""Helpers for the MCP tests: the official MCP client against `signoff mcp ...` processes,
and a reviewer voting in the web inbox of a real `signoff serve`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.e2e.serve import SIGNOFF

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = f"{sys.executable} -m examples.mcp_gateway.upstream"


def agent_env(url: str, key: str, **more: str) -> dict[str, str]:
    """What an MCP client passes to the gateway: the current environment without any
    SIGNOFF_* of the test run's own, plus Signoff's address and the agent's key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    return {**env, "SIGNOFF_URL": url, "SIGNOFF_API_KEY": key, **more}


@asynccontextmanager
async def mcp_process(args: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    """`signoff ARGS` spoken to over stdio by the official MCP client, initialized."""
    parameters = StdioServerParameters(command=SIGNOFF, args=args, env=env, cwd=ROOT)
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def upstream_session(book: Path) -> AsyncIterator[ClientSession]:
    """The example's payments server on its own, to compare what the gateway passes on."""
    command, *args = UPSTREAM.split()
    parameters = StdioServerParameters(
        command=command, args=[*args, "--ledger", str(book)], cwd=ROOT
    )
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def paid(path: Path) -> list[dict[str, Any]]:
    return [entry for entry in ledger(path) if entry["event"] == "paid"]


async def pending_request(
    url: str, key: str, kind: str, payload: dict[str, Any], within: float = 20.0
) -> str:
    """The id of the pending request of `kind` with `payload`, once the gateway filed it."""
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as api:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            page = (await api.get("/v1/requests", params={"status": "pending"})).json()
            for item in page["items"]:
                if item["action"]["kind"] == kind and item["action"]["payload"] == payload:
                    rid: str = item["id"]
                    return rid
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no pending {kind} {payload}: {page}")
            await asyncio.sleep(0.2)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


class Reviewer:
    """A person in the web inbox, driven through its forms as a browser without JavaScript."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url)

    async def sign_in(self, name: str, password: str) -> None:
        page = await self.client.get("/login")
        response = await self.client.post(
            "/login",
            data={"csrf": csrf(page.text), "username": name, "password": password, "next": "/"},
        )
        assert response.status_code == 303, response.text

    async def sign_in_with_link(self, link: str) -> None:
        page = await self.client.get(link)
        response = await self.client.post(link, data={"csrf": csrf(page.text)})
        assert response.status_code == 303, response.text

    async def vote(self, rid: str, verdict: str, rationale: str = "", **fields: str) -> None:
        page = await self.client.get(f"/requests/{rid}")
        assert page.status_code == 200, page.text
        response = await self.client.post(
            f"/requests/{rid}/vote",
            data={"csrf": csrf(page.text), "verdict": verdict, "rationale": rationale, **fields},
        )
        assert response.status_code in (200, 303), response.text

    async def aclose(self) -> None:
        await self.client.aclose()


@contextmanager
def http_process(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """A process serving streamable HTTP MCP on `port`; yields its /mcp URL once it answers."""
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"{args} did not come up") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
