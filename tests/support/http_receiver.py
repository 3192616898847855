"""A real HTTP server on loopback for integration tests: an agent's webhook endpoint, a fake
Slack Web API, a fake Bot Connector, ...

It runs uvicorn on its own event loop in a background thread, so the code under test talks
real HTTP over a real socket and the test's own loop stays free::

    with HttpReceiver() as rx:                      # or: async with HttpReceiver() as rx:
        rx.respond("/hook", Reply(503, headers={"retry-after": "7"}), Reply(200))
        rx.set_handler("/api/chat.postMessage", lambda req: Reply.json({"ok": True}))
        ...  # point the code under test at f"{rx.url}/hook"
        [first] = await rx.wait_for(1, path="/hook")
        assert first.headers["content-type"] == "application/json"

For each request, in order: the next queued reply for its path (`respond`), else the path's
handler (`set_handler`), else 200 ``{"ok":true}``. A handler may be sync or async; it runs on
the server's loop, so a slow endpoint is an async handler that awaits `asyncio.sleep` (or a
`Reply(delay=...)`), never `time.sleep`. A handler that raises yields a 500 and the error is
raised again when the receiver exits, so a broken fake cannot pass silently. A WebSocket to
a path with a `set_socket_handler` is given to that handler as a `Peer`; other WebSockets
are refused (403).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn

_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 10.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived. `headers` keys are lower-case (repeats joined by ", ");
    `at` is wall-clock unix seconds when the body was fully read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: str = ""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass(frozen=True)
class Reply:
    """A response to send; `delay` seconds pass before it is sent (for timeout tests)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(data).encode(),
            {"content-type": "application/json", **(headers or {})},
        )


Handler = Callable[[Recorded], Reply | Awaitable[Reply]]


class Peer:
    """One WebSocket connection, server side (the ASGI messages behind small methods)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.path: str = scope["path"]
        self.query: str = scope["query_string"].decode("latin-1")
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self._receive = receive
        self._send = send
        self._lock = asyncio.Lock()
        self.closed = False

    async def accept(self) -> None:
        message = await self._receive()
        assert message["type"] == "websocket.connect", message
        await self._send({"type": "websocket.accept"})

    async def refuse(self) -> None:
        """Before `accept`: answer the upgrade with 403."""
        await self._receive()
        await self._send({"type": "websocket.close", "code": 1008})
        self.closed = True

    async def send_json(self, data: Any) -> bool:
        """False when the connection is closed (the message is not sent)."""
        async with self._lock:
            if self.closed:
                return False
            try:
                await self._send({"type": "websocket.send", "text": json.dumps(data)})
            except OSError:  # uvicorn's ClientDisconnected: the client is gone
                self.closed = True
                return False
            return True

    async def receive_text(self) -> str | None:
        """The next text message, or None once the client went away."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self.closed = True
                return None
            if message.get("text") is not None:
                return str(message["text"])
            if message.get("bytes") is not None:
                return bytes(message["bytes"]).decode()

    async def close(self, code: int = 1000) -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                # The client may have gone between our last read and now.
                with contextlib.suppress(OSError):
                    await self._send({"type": "websocket.close", "code": code})


SocketHandler = Callable[[Peer], Awaitable[None]]


class _Server(uvicorn.Server):
    """uvicorn checks `should_exit` every 0.1 s; waking on an event instead takes that
    latency off every test's teardown."""

    def __init__(self, config: uvicorn.Config, wake: asyncio.Event) -> None:
        super().__init__(config)
        self.wake = wake

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            # on_tick refreshes the Date header whenever counter % 10 == 0, i.e. each second.
            counter += 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)


DEFAULT_REPLY = Reply.json({"ok": True})
_STOPPED_REPLY = Reply(503, b"receiver stopped")


class HttpReceiver:
    """A uvicorn server on 127.0.0.1 (a free port) that records requests and replies as told.

    Start and stop it with `with` / `async with` (or `start()` / `stop()`). Any number can
    run at once. All methods are safe to call from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[Recorded] = []
        self._queues: dict[str, collections.deque[Reply]] = {}
        self._handlers: dict[str, Handler] = {}
        self._socket_handlers: dict[str, SocketHandler] = {}
        self._errors: list[tuple[str, BaseException]] = []
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._crash: BaseException | None = None
        self.url = ""

    # ---- configuration and inspection -------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def respond(self, path: str, *replies: Reply) -> None:
        """Queue replies for `path`; each request to it takes the next one."""
        with self._lock:
            self._queues.setdefault(path, collections.deque()).extend(replies)

    def set_handler(self, path: str, handler: Handler) -> None:
        """Compute replies for `path` (when its queue is empty) from the recorded request."""
        with self._lock:
            self._handlers[path] = handler

    def set_socket_handler(self, path: str, handler: SocketHandler) -> None:
        """Serve WebSockets at `path`: `handler(peer)` runs on the server's loop for as long
        as the connection should live (the server closes it when the handler returns)."""
        with self._lock:
            self._socket_handlers[path] = handler

    def call_soon(self, callback: Callable[[], Any]) -> None:
        """Run `callback` on the server's loop (for handlers that wake sockets)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing to wake
                loop.call_soon_threadsafe(callback)

    def clear(self) -> None:
        """Forget recorded requests (queued replies and handlers stay)."""
        with self._lock:
            self._requests.clear()

    def _matching(self, path: str | None) -> list[Recorded]:
        return [r for r in self._requests if path is None or r.path == path]

    def wait_for_sync(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Recorded]:
        """Block until `count` requests (to `path`, if given) arrived; return them all.

        Raises TimeoutError, naming what did arrive, after `timeout` seconds.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._matching(path)) >= count, timeout):
                raise TimeoutError(self._timeout_message(count, path, timeout))
            return self._matching(path)

    # The timeout parameter mirrors wait_for_sync so tests read the same either way.
    async def wait_for(
        self,
        count: int,
        path: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[Recorded]:
        """Like `wait_for_sync`, without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                matching = self._matching(path)
                if len(matching) >= count:
                    return matching
                if time.monotonic() >= deadline:
                    raise TimeoutError(self._timeout_message(count, path, timeout))
            await asyncio.sleep(0.005)

    def _timeout_message(self, count: int, path: str | None, timeout: float) -> str:
        seen = [f"{r.method} {r.path}" for r in self._requests]
        where = f" to {path}" if path else ""
        return f"expected {count} request(s){where} within {timeout}s; got {seen}"

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Listen on a fresh port and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("HttpReceiver already started")
        # Binding here, not in uvicorn, means the port is known at once and cannot be taken
        # by someone else between choosing and listening.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            http="h11",
            ws="websockets-sansio",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            # A request still in flight at exit is cut off rather than waited for.
            timeout_graceful_shutdown=1,
        )
        self._loop, self._crash = None, None
        self._stopping = asyncio.Event()
        self._server = _Server(config, self._stopping)
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name=f"HttpReceiver-{port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("HttpReceiver failed to start") from self._crash
            time.sleep(0.001)

    def _run(self, server: _Server, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(server, sock))
        except BaseException as exc:  # surfaced by start()/stop() in the test's thread
            self._crash = exc

    async def _serve(self, server: _Server, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        await server.serve(sockets=[sock])

    def stop(self) -> None:
        """Cut off slow replies, stop the server and join its thread."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            # The loop may have closed already if the server crashed.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(_STOP_TIMEOUT)
        if self._sock is not None:
            self._sock.close()
        self._thread = self._server = self._sock = None
        if thread.is_alive():
            raise RuntimeError(f"HttpReceiver at {self.url} did not stop")
        if self._crash is not None:
            raise RuntimeError(f"HttpReceiver at {self.url} crashed") from self._crash

    def _raise_handler_errors(self) -> None:
        with self._lock:
            errors = list(self._errors)
        if errors:
            path, first = errors[0]
            raise AssertionError(
                f"{len(errors)} HttpReceiver handler(s) failed, first on {path}"
            ) from first

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            self._raise_handler_errors()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
        if exc_type is None:
            self._raise_handler_errors()

    # ---- the ASGI app (runs on the server's loop) --------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._socket(Peer(scope, receive, send))
            return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        recorded = Recorded(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=b"".join(chunks),
            at=time.time(),
            query=scope["query_string"].decode("latin-1"),
        )
        with self._arrived:
            self._requests.append(recorded)
            self._arrived.notify_all()
        try:
            reply = await self._reply_or_stop(recorded)
        except Exception as exc:
            with self._lock:
                self._errors.append((recorded.path, exc))
            reply = Reply(500, f"HttpReceiver handler failed: {exc!r}".encode())
        await self._send(send, reply)

    async def _socket(self, peer: Peer) -> None:
        with self._lock:
            handler = self._socket_handlers.get(peer.path)
        if handler is None:
            await peer.refuse()
            return
        try:
            await handler(peer)
        except Exception as exc:
            with self._lock:
                self._errors.append((peer.path, exc))
        finally:
            await peer.close()

    async def _reply_or_stop(self, recorded: Recorded) -> Reply:
        assert self._stopping is not None
        work = asyncio.ensure_future(self._reply(recorded))
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            work.cancel()
            await asyncio.wait((work, stopped))
        return _STOPPED_REPLY if work.cancelled() else work.result()

    async def _reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            queue = self._queues.get(recorded.path)
            reply = queue.popleft() if queue else None
            handler = self._handlers.get(recorded.path)
        if reply is None and handler is not None:
            result = handler(recorded)
            reply = await result if inspect.isawaitable(result) else result
        if reply is None:
            reply = DEFAULT_REPLY
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        return reply

    @staticmethod
    async def _send(send: Send, reply: Reply) -> None:
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()
        ]
        # 1xx, 204 and 304 must not carry a length; everything else gets an exact one so the
        # client never has to guess where the body ends.
        if reply.status >= 200 and reply.status not in (204, 304):
            if not any(name == b"content-length" for name, _ in headers):
                headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
