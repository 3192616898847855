"""The invoice agent as a small web app: Signoff's resume webhook lands at `POST /resume`.

Each run of the process compiles the graph afresh over the SQLite checkpoints, so a paused
invoice resumes here even though the process that paused it is long gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from starlette.applications import Starlette
from starlette.routing import Mount

from examples.invoice_agent.graph import InvoiceState, build_graph, describe
from signoff_client._client import AsyncSignoffClient, ResumeEvent
from signoff_client.langgraph import Graph, ResumeOutcome, ResumeReceiver, SignoffGate


@dataclass
class _Running:
    graph: Graph | None = None


def create_app(
    *,
    db_path: str,
    signoff_url: str,
    api_key: str,
    webhook_secret: str,
    http: httpx.AsyncClient | None = None,
    report: Callable[[str], None] = print,
) -> Starlette:
    """The agent's app. `report` gets one line per resumed invoice (`print` by default)."""
    running = _Running()

    def graph() -> Graph:
        if running.graph is None:
            raise RuntimeError("the agent is not started")
        return running.graph

    async def reported(event: ResumeEvent, outcome: ResumeOutcome) -> None:
        if outcome.resumed and event.data.thread_id:
            state = await graph().aget_state({"configurable": {"thread_id": event.data.thread_id}})
            report(describe(cast(InvoiceState, state.values)))

    receiver = ResumeReceiver(graph, webhook_secret, on_event=reported)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with (
            AsyncSqliteSaver.from_conn_string(db_path) as saver,
            AsyncSignoffClient(signoff_url, api_key, http=http) as client,
        ):
            running.graph = build_graph(SignoffGate(client), saver)
            yield
            running.graph = None

    return Starlette(routes=[Mount("/", app=receiver)], lifespan=lifespan)
