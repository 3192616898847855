"""Servers the benchmarks run in their own processes (so they do not share a CPU with the
load generator):

* `sink`: a zero-latency HTTP endpoint that answers at once and remembers when each
  request id arrived. It plays the agent's webhook endpoint and a fake Slack Web API
  (`/api/chat.postMessage`, `/api/chat.update`, `/api/auth.test`). `GET /_records`
  returns `{"arrivals": {request_id: unix_time}, "count": n}`.
* `baseline`: a bare FastAPI app whose `POST /v1/requests` validates a JSON body and does
  one INSERT, on the same database and driver Signoff uses.
* `slack-ack`: a bare Starlette app whose `POST /slack/events` checks the Slack signature
  (the signing secret from `SLACK_SIGNING_SECRET`) and answers 200: the floor of an ack.

    python -m bench._servers sink --port 9000
    python -m bench._servers baseline --port 9001 --database URL [--workers N]
    python -m bench._servers slack-ack --port 9002
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from pydantic import BaseModel, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REQUEST_ID = re.compile(rb"req_[0-9a-z]{26}")


class Sink:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self._ts = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                if event == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        at = time.time()
        raw = b"".join(chunks)
        path = scope["path"]
        if path == "/_records":
            await _json(send, {"arrivals": self.arrivals, "count": self.count})
            return
        if path == "/healthz":
            await _json(send, {"ok": True})
            return
        self.count += 1
        found = _REQUEST_ID.search(raw)
        if found is not None:
            self.arrivals.setdefault(found.group().decode(), at)
        if path.startswith("/api/"):
            channel = "C0BENCH"
            await _json(
                send,
                {
                    "ok": True,
                    "channel": channel,
                    "ts": f"{next(self._ts)}.000100",
                    "user_id": "U0B",
                },
            )
            return
        await _json(send, {"ok": True})


async def _json(send: Send, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ActionIn(BaseModel):
    kind: str
    summary: str
    payload: dict[str, Any] = Field(default_factory=dict)


class RequestIn(BaseModel):
    action: ActionIn
    confidence: float = Field(ge=0, le=1)
    thread_id: str | None = None


def baseline_app(database_url: str) -> Any:
    """FastAPI + pydantic + SQLAlchemy asyncio, one INSERT per request: the floor."""
    from datetime import UTC, datetime

    from fastapi import FastAPI
    from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, insert

    from storage.sql import create_engine

    engine = create_engine(database_url)
    metadata = MetaData()
    table = Table(
        "baseline_requests",
        metadata,
        Column("id", String, primary_key=True),
        Column("body", JSON),
        Column("created_at", DateTime(timezone=True)),
    )

    async def lifespan(_: FastAPI) -> Any:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/v1/requests", status_code=201)
    async def submit(body: RequestIn) -> dict[str, str]:
        request_id = f"req_{uuid.uuid4().hex[:26]}"
        async with engine.begin() as conn:
            await conn.execute(
                insert(table).values(
                    id=request_id, body=body.model_dump(), created_at=datetime.now(UTC)
                )
            )
        return {"id": request_id, "status": "pending"}

    return app


def slack_ack_app() -> Any:
    """Verify the signature as Signoff's Slack endpoint does (slack_sdk), then answer 200."""

    from slack_sdk.signature import SignatureVerifier
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    verifier = SignatureVerifier(os.environ["SLACK_SIGNING_SECRET"])

    async def events(request: Request) -> Response:
        body = await request.body()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        return Response(status_code=200)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def _run_workers(args: argparse.Namespace) -> None:
    import signal
    import subprocess

    from bot.server.workers import listening_socket

    sockets = [
        listening_socket("127.0.0.1", args.port, reuse_port=True) for _ in range(args.workers)
    ]
    children = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "bench._servers", "baseline", "--port", str(args.port)),
                *("--database", args.database, "--listen-fd", str(sock.fileno())),
            ],
            pass_fds=(sock.fileno(),),
        )
        for sock in sockets
    ]
    for sock in sockets:
        sock.close()

    def stop(_signum: int, _frame: object) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sink", "baseline", "slack-ack"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--listen-fd", type=int)
    args = parser.parse_args()
    if args.kind == "baseline" and args.workers > 1:
        # N processes on one port, as `signoff serve --workers N` runs them: a socket per
        # process with SO_REUSEPORT. (uvicorn's own `--workers` shares one socket, and then
        # whichever worker wakes first may take most of the load generator's keep-alive
        # connections: in four runs its two workers' CPU split 96/1, 87/3, 83/53 and 75/66,
        # and the baseline's figure with them.)
        _run_workers(args)
        return
    if args.listen_fd is not None:
        # The inherited socket as what it is (TCP): uvicorn's `fd=` takes it for a Unix
        # socket, and then asyncio leaves Nagle on for every connection (a 40 ms stall per
        # response under delayed ACKs).
        listening = socket.socket(fileno=args.listen_fd)
        config = uvicorn.Config(
            baseline_app(args.database), log_level="warning", server_header=False
        )
        asyncio.run(uvicorn.Server(config).serve(sockets=[listening]))
        return
    app: Any
    if args.kind == "sink":
        app = Sink()
    elif args.kind == "slack-ack":
        app = slack_ack_app()
    else:
        app = baseline_app(args.database)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", server_header=False
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
