"""Serve an ASGI app with a real uvicorn on 127.0.0.1, inside the test's own event loop.

`HttpReceiver` runs its server on a thread of its own; this one shares the test's loop, so
the app may use objects made in the test (a repository, a LangGraph checkpointer) while the
code under test reaches it over a real socket. The port is bound at construction, so two
apps that must know each other's URL can be wired before either starts::

    agent = LoopbackServer()                  # agent.url is known now
    async with agent.serve(app):              # runs the app's lifespan, serves, shuts down
        ...

A server can be started again after it stopped (an agent process restarting) on the same
port, so the URL other parties were given works again; in between, connections are refused.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import uvicorn


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class LoopbackServer:
    def __init__(self) -> None:
        with _bind(0) as probe:
            self.port: int = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def serve(self, app: Any, *, lifespan: str = "auto") -> AsyncIterator[None]:
        """Serve `app` until the block ends. Refused connections before and after."""
        sock = _bind(self.port)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                lifespan=lifespan,
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=1,
            )
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.005)
            yield
        finally:
            server.should_exit = True
            await task
            sock.close()


class ThreadedServer:
    """Serve an ASGI app on 127.0.0.1 from a thread with its own event loop, for blocking
    clients. The app's lifespan runs there, so services it builds live on that loop::

        with ThreadedServer(create_app(config)) as server:   # create_app builds on startup
            SignoffClient(server.url, key).get(...)
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server = LoopbackServer()
        self.url = self._server.url
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._crash: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with self._server.serve(self._app):
                self._started.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by __enter__ / __exit__
            self._crash = exc
            self._started.set()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._started.wait(30) or self._crash is not None:
            raise RuntimeError("ThreadedServer did not start") from self._crash
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if self._crash is not None:
            raise RuntimeError("ThreadedServer crashed") from self._crash
