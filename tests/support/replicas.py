"""Several `signoff serve` processes on one database, for fault-injection tests.

Unlike `tests.e2e.serve.serve`, replicas start together (so their start-up migrations race,
as in a real rollout) and the test can SIGKILL, SIGSTOP and SIGCONT each one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.serve import SIGNOFF
from tests.support.http_receiver import free_port

START_TIMEOUT = 45.0


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, leases and connections are left as they were."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 10.0, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines[after:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} printed no line with {text!r}:\n{self.output()}")


def _start(name: str, config: Path, env: Mapping[str, str], cwd: Path) -> Replica:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    full_env.update(env)
    process = subprocess.Popen(
        [SIGNOFF, "serve", "--config", str(config), "--port", str(port)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    replica = Replica(name, port, process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            replica.lines.append(line.rstrip("\n"))

    replica._reader = threading.Thread(target=pump, name=f"{name}-output", daemon=True)
    replica._reader.start()
    return replica


def _wait_healthy(replicas: Sequence[Replica]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(replicas)
    while waiting:
        for replica in list(waiting):
            if not replica.alive:
                raise AssertionError(
                    f"{replica.name} exited {replica.process.returncode}:\n{replica.output()}"
                )
            try:
                if httpx.get(f"{replica.url}/readyz", timeout=1).status_code == 200:
                    waiting.remove(replica)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            names = ", ".join(r.name for r in waiting)
            raise AssertionError(
                f"{names} did not come up:\n" + "\n".join(r.output() for r in waiting)
            )
        time.sleep(0.1)


def _stop(replica: Replica) -> None:
    if replica.alive:
        replica.thaw()  # a frozen process cannot act on SIGTERM
        replica.process.terminate()
        try:
            replica.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()
    if replica._reader is not None:
        replica._reader.join(timeout=5)
    if replica.process.stdout is not None:
        replica.process.stdout.close()


@contextmanager
def replicas(
    count: int, config: Path, env: Mapping[str, str], cwd: Path
) -> Iterator[list[Replica]]:
    """Start `count` replicas at once and wait until each answers /readyz; stop them after."""
    started: list[Replica] = []
    try:
        for index in range(count):
            started.append(_start(f"replica-{chr(ord('a') + index)}", config, env, cwd))
        _wait_healthy(started)
        yield started
    finally:
        for replica in started:
            _stop(replica)
