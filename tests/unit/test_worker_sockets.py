"""A worker of `signoff serve --workers N` serves its inherited socket as TCP, Nagle off."""

from __future__ import annotations

import asyncio
import os
import socket

from bot.server._serve_cli import inherited_sockets
from bot.server.workers import listening_socket


async def test_connections_on_an_inherited_socket_have_nagle_off() -> None:
    bound = listening_socket("127.0.0.1", 0, reuse_port=True)
    port = bound.getsockname()[1]
    # As a child sees it: only a file descriptor number.
    (inherited,) = inherited_sockets(os.dup(bound.fileno())) or ()
    bound.close()
    assert (inherited.family, inherited.type) == (socket.AF_INET, socket.SOCK_STREAM)

    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(on_connect, sock=inherited)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        nodelay = await asyncio.wait_for(accepted.get(), 5)
        writer.close()
        await writer.wait_closed()
    assert nodelay == 1


def test_no_inherited_socket_means_uvicorn_binds_its_own() -> None:
    assert inherited_sockets(None) is None
