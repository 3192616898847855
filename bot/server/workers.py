"""`signoff serve --workers N`: N processes on one port, each a replica of the multi-replica
design (docs/replicas.md), so one host uses every core.

The parent binds one listening socket per child, all on the same port with SO_REUSEPORT,
and starts N `signoff serve` children that each inherit theirs (`--listen-fd`): the kernel
spreads new connections evenly over the sockets. (One shared socket lets whichever child
wakes first take a burst of connections, so long-lived keep-alive clients can pile onto one
process while the other idles; where SO_REUSEPORT is missing, that is the fallback.) Every
child runs the whole service: its own scheduler, outbox worker and connection pool, with
correctness in the database's claims and leases as for replicas on several hosts. That is
why it needs PostgreSQL: SQLite is one process by design.

The parent forwards SIGINT and SIGTERM to the children and exits when they have; if one
child dies, it stops the others and exits with that child's status, so a process manager
sees the failure and restarts the whole set rather than running one worker short.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.core.errors import ConfigError

MAX_WORKERS = 64


def check_workers(workers: int, database_url: str) -> None:
    """Raises ConfigError when `workers` cannot be honoured for this database."""
    if workers < 1 or workers > MAX_WORKERS:
        raise ConfigError("--workers", f"must be between 1 and {MAX_WORKERS}, not {workers}")
    if workers > 1 and not database_url.startswith("postgresql"):
        raise ConfigError(
            "--workers",
            "several worker processes need PostgreSQL (database_url postgresql+psycopg://...); "
            "SQLite serves one process",
        )


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket a worker accepts on (inheritable, so a child gets it); with `reuse_port`,
    one of several on the same port that the kernel balances new connections across."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _probe_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) when something listens on `host:port` already."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def run_workers(workers: int, host: str, port: int, child_args: Sequence[str]) -> int:
    """Start `workers` children of `signoff serve` sharing one socket; wait for them."""
    sockets: list[socket.socket] = []
    try:
        if REUSE_PORT:
            # A plain bind first: it fails if anything listens on the port already, where a
            # SO_REUSEPORT bind would join another server's sockets (a second `signoff serve`
            # on the same port) and quietly share its connections.
            _probe_free(host, port)
        for _ in range(workers if REUSE_PORT else 1):
            sockets.append(listening_socket(host, port, reuse_port=REUSE_PORT))
    except OSError as exc:
        for opened in sockets:
            opened.close()
        raise ConfigError("--port", f"cannot listen on {host}:{port}: {exc}") from exc
    script = Path(sys.executable).with_name("signoff")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.server.cli"]
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for index in range(workers):
            sock = sockets[index % len(sockets)]
            children.append(
                subprocess.Popen(
                    [*command, "serve", *child_args, "--listen-fd", str(sock.fileno())],
                    pass_fds=(sock.fileno(),),
                    env={**os.environ, "SIGNOFF_WORKER": str(index + 1)},
                )
            )
        print(
            f"Signoff: {workers} workers on http://{host}:{port} "
            f"(pids {', '.join(str(c.pid) for c in children)})",
            flush=True,
        )
        for sock in sockets:
            sock.close()
        status = 0
        while any(c.poll() is None for c in children):
            for child in children:
                code = child.poll()
                if code is not None and not stopping:
                    # One worker died on its own: stop the rest and report it.
                    stopping = True
                    status = code or 1
                    print(f"Signoff: worker {child.pid} exited with {code}; stopping", flush=True)
                    for other in children:
                        if other.poll() is None:
                            other.terminate()
            time.sleep(0.2)
        return status
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
