"""A TCP proxy on loopback that a test can cut: plays a database restart or a network blip.

    with TcpProxy("127.0.0.1", 5432) as proxy:     # point the code under test at proxy.port
        ...
        proxy.cut()       # every open connection is reset; new ones are closed at once
        ...
        proxy.restore()   # connections pass again

It runs its own event loop in a background thread, like `HttpReceiver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.accepted = 0
        self.refused = 0

    # -- control (from the test's thread) ------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, sock=sock))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("the TCP proxy did not start")

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `restore()`."""
        self._call(self._cut_now)

    def restore(self) -> None:
        self._call(self._restore_now)

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shut)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

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

    def _call(self, action: object) -> None:
        assert self._loop is not None, "proxy not started"

        async def run() -> None:
            assert callable(action)
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    # -- the proxy (on its own loop) -------------------------------------------------------

    def _cut_now(self) -> None:
        self._cut = True
        self._close_all()

    def _shut(self) -> None:
        self._close_all()
        if self._server is not None:
            self._server.close()

    def _restore_now(self) -> None:
        self._cut = False

    def _close_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(OSError):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # RST rather than FIN: what a peer sees when the database host dies.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.accepted += 1
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for end in (writer, up_writer):
            self._writers.discard(end)
            end.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
