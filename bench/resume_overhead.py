"""What a Signoff gate adds to a LangGraph approval, compared with a bare interrupt.

Both graphs are the same three steps (propose, gate, act) over AsyncSqliteSaver checkpoints:

* direct: the gate is a plain `interrupt()`; the "human" resumes it in-process with
  `graph.ainvoke(Command(resume=...))`.
* signoff: the gate is `SignoffGate.ask` (a submit over HTTP to Signoff on SQLite, served by
  uvicorn on loopback); the human's vote goes through the engine, and the graph resumes
  through the real path: the outbox (kicked by the scheduler on commit) sends the signed
  webhook to a `ResumeReceiver` (uvicorn on loopback), which verifies it, reads the
  checkpoint and resumes (the gate's replay submits again and gets the original answer).

Timed: the run up to the pause, plus from the moment the verdict is committed to the moment
the graph has finished; the human's time (and the vote itself) is excluded. Reported: p50 and
p99 of each, and of the extra time per approval (signoff minus direct, paired by iteration).
Target (issue 7): p50 < 50 ms extra on SQLite.

    .venv/bin/python -m bench.resume_overhead [--iterations 200] [--warmup 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import uvicorn
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from bench._common import percentile, table, write_results
from bot.core.domain import Verdict
from bot.server.app import build_services, create_app
from bot.server.config import parse_config
from signoff_client._client import AsyncSignoffClient, ResumeEvent
from signoff_client.langgraph import ResumeOutcome, ResumeReceiver, SignoffGate
from storage import open_repository

KEY = "sk_bench_resume_overhead"
SECRET = "whsec_" + base64.b64encode(b"resume-overhead-bench-secret").decode()
SECRET_ENV = "BENCH_WEBHOOK_SECRET"
TARGET_P50_MS = 50.0
ACTION = {"kind": "payment", "summary": "Pay INV-1 to ACME", "payload": {"invoice": "INV-1"}}


class State(TypedDict, total=False):
    verdict: dict[str, Any]
    paid: bool


def direct_graph(saver: AsyncSqliteSaver) -> Any:
    def gate(state: State) -> State:
        return {"verdict": interrupt({"question": "Pay INV-1?", "action": ACTION})}

    return _graph(saver, gate)


def signoff_graph(saver: AsyncSqliteSaver, gate: SignoffGate) -> Any:
    async def ask(state: State) -> State:
        verdict = await gate.ask(ACTION, 0.3, amount=5000, currency="USD")
        return {"verdict": verdict.model_dump()}

    return _graph(saver, ask)


def _graph(saver: AsyncSqliteSaver, gate: Callable[..., Any]) -> Any:
    builder = StateGraph(State)
    builder.add_node("propose", lambda state: {})
    builder.add_node("gate", gate)
    builder.add_node("act", lambda state: {"paid": state["verdict"]["status"] == "approved"})
    builder.add_edge(START, "propose")
    builder.add_edge("propose", "gate")
    builder.add_edge("gate", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=saver)


@asynccontextmanager
async def served(app: Any, port_holder: list[int]) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    port_holder.append(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run(iterations: int, warmup: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="signoff-resume-bench-"))
    finished: dict[str, asyncio.Future[float]] = {}

    async def on_event(event: ResumeEvent, outcome: ResumeOutcome) -> None:
        future = finished.get(event.data.thread_id or "")
        if outcome.resumed and future is not None and not future.done():
            future.set_result(time.perf_counter())

    async with (
        AsyncSqliteSaver.from_conn_string(str(work / "direct.db")) as direct_saver,
        AsyncSqliteSaver.from_conn_string(str(work / "agent.db")) as agent_saver,
    ):
        direct = direct_graph(direct_saver)
        receiver_graph: list[Any] = []
        receiver = ResumeReceiver(lambda: receiver_graph[0], SECRET, on_event=on_event)
        ports: list[int] = []
        async with served(receiver, ports) as agent_url:
            config = parse_config(
                {
                    "database_url": f"sqlite:///{work / 'signoff.db'}",
                    "agents": [
                        {
                            "id": "bench-agent",
                            "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                            "callback_url": f"{agent_url}/resume",
                            "webhook_secret_env": SECRET_ENV,
                        }
                    ],
                },
                env={},
            )
            repo = await open_repository(config.settings.database_url, migrate=True)
            services = await build_services(config, repo=repo, env={SECRET_ENV: SECRET})
            async with (
                services.stack,
                served(create_app(config, services=services), ports) as signoff_url,
                AsyncSignoffClient(signoff_url, KEY) as client,
            ):
                gated = signoff_graph(agent_saver, SignoffGate(client))
                receiver_graph.append(gated)
                rows: list[dict[str, float]] = []
                for index in range(warmup + iterations):
                    sample = {
                        **await _direct_once(direct, f"d-{index}"),
                        **await _signoff_once(gated, services, finished, f"s-{index}"),
                    }
                    if index >= warmup:
                        rows.append(sample)
            await repo.close()
    return summarize(rows, iterations)


async def _direct_once(graph: Any, thread: str) -> dict[str, float]:
    config = {"configurable": {"thread_id": thread}}
    started = time.perf_counter()
    out = await graph.ainvoke({}, config)
    paused = time.perf_counter()
    [waiting] = out["__interrupt__"]
    resumed_at = time.perf_counter()
    done = await graph.ainvoke(Command(resume={waiting.id: {"status": "approved"}}), config)
    ended = time.perf_counter()
    assert done["paid"]
    return {"direct_pause": paused - started, "direct_resume": ended - resumed_at}


async def _signoff_once(
    graph: Any, services: Any, finished: dict[str, asyncio.Future[float]], thread: str
) -> dict[str, float]:
    config = {"configurable": {"thread_id": thread}}
    started = time.perf_counter()
    out = await graph.ainvoke({}, config)
    paused = time.perf_counter()
    [waiting] = out["__interrupt__"]
    finished[thread] = asyncio.get_running_loop().create_future()
    # The human: excluded from the timing, which starts once the verdict is committed.
    await services.engine.vote(
        waiting.value["signoff_request_id"],
        "web:admin",
        Verdict.APPROVE,
        channel="web",
        rationale="ok",
    )
    committed = time.perf_counter()
    ended = await asyncio.wait_for(finished[thread], 30)
    del finished[thread]
    state = await graph.aget_state(config)
    assert state.values["paid"]
    return {"signoff_pause": paused - started, "signoff_resume": ended - committed}


def summarize(rows: list[dict[str, float]], iterations: int) -> dict[str, Any]:
    def ms(key: str | Callable[[dict[str, float]], float]) -> list[float]:
        pick = key if callable(key) else (lambda row: row[key])
        return [pick(row) * 1000 for row in rows]

    series = {
        "direct: run to pause": ms("direct_pause"),
        "direct: resume to done": ms("direct_resume"),
        "signoff: run to pause (submit)": ms("signoff_pause"),
        "signoff: verdict to done (webhook)": ms("signoff_resume"),
        "direct total": ms(lambda r: r["direct_pause"] + r["direct_resume"]),
        "signoff total": ms(lambda r: r["signoff_pause"] + r["signoff_resume"]),
        "extra per approval": ms(
            lambda r: (
                r["signoff_pause"] + r["signoff_resume"] - r["direct_pause"] - r["direct_resume"]
            )
        ),
    }
    stats = {
        name: {
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "mean_ms": statistics.fmean(values),
        }
        for name, values in series.items()
    }
    table(
        f"LangGraph approval gate, {iterations} approvals each (SQLite; human time excluded)",
        ["", "p50 ms", "p99 ms", "mean ms"],
        [[name, s["p50_ms"], s["p99_ms"], s["mean_ms"]] for name, s in stats.items()],
    )
    extra = stats["extra per approval"]["p50_ms"]
    ratio = stats["signoff total"]["p50_ms"] / stats["direct total"]["p50_ms"]
    met = extra < TARGET_P50_MS
    print(
        f"\nextra p50 {extra:.1f} ms (target < {TARGET_P50_MS:.0f} ms: "
        f"{'met' if met else 'MISSED'}); signoff/direct p50 ratio {ratio:.1f}x"
    )
    return {
        "iterations": iterations,
        "database": "sqlite",
        "stats": stats,
        "ratio_p50": ratio,
        "target_p50_extra_ms": TARGET_P50_MS,
        "target_met": met,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run(args.iterations, args.warmup))
    write_results("resume_overhead", results)


if __name__ == "__main__":
    main()
