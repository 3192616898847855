"""Run `signoff serve` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.http_receiver import free_port

SIGNOFF = str(Path(sys.executable).with_name("signoff"))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def line_matching(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no output line matches {pattern!r}; got {self.lines}")

    @property
    def api_key(self) -> str:
        return self.line_matching(r"api key: (sk_\S+)").group(1)


@contextmanager
def serve(
    cwd: Path,
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    extra: Sequence[str] = (),
    signoff: str = SIGNOFF,
) -> Iterator[Server]:
    port = port or free_port()
    args = [signoff, "serve", "--port", str(port), *extra]
    if config is not None:
        args += ["--config", str(config)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    full_env.update(env or {})
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"signoff serve exited {process.returncode}: {server.lines}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"signoff serve did not come up: {server.lines}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def run(
    *args: str, cwd: Path, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    full_env.update(env or {})
    return subprocess.run(
        [SIGNOFF, *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
