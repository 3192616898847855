"""examples/openai_agents, run as its README says: Signoff with the example's config, the
agent paying a small invoice at once and pausing on a large one, its process ending with
the run saved, the built-in admin deciding in the web inbox through the login link serve
prints, and `resume` finishing the run in a new process. Takes 15-30 s: six agent
processes of 2.5-4 s each, mostly importing the SDK."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve import serve
from tests.support.http_receiver import free_port
from tests.support.mcp import ROOT, Reviewer, pending_request

pytestmark = pytest.mark.slow

KEY = "sk_example_openai_agent_local_only"  # published in examples/openai_agents/README.md


def example(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    return subprocess.run(
        [sys.executable, "-m", "examples.openai_agents", *args],
        cwd=cwd,
        env={**env, "SIGNOFF_URL": url, "SIGNOFF_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def agent(*args: str, url: str, cwd: Path) -> str:
    done = await asyncio.to_thread(example, *args, url=url, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_the_readme_walk_through(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "SIGNOFF_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    config = ROOT / "examples" / "openai_agents" / "signoff.yaml"
    saved = tmp_path / "openai-run.json"
    with serve(tmp_path, config=config, env=env, port=port) as server:
        small = await agent("pay", "INV-8", "120", url=server.url, cwd=tmp_path)
        assert small.splitlines() == [
            "  [pay_invoice] paid INV-8: 120.00 USD",
            "agent: Done: paid INV-8: 120.00 USD.",
        ]
        assert not saved.exists()

        paused = await agent("pay", "INV-7", "950", url=server.url, cwd=tmp_path)
        assert "waits for a reviewer in Signoff" in paused and "reasons: large_payment" in paused
        assert "[pay_invoice]" not in paused and saved.exists()
        payment = {"invoice": "INV-7", "amount": 950.0}
        rid = await pending_request(server.url, KEY, "tool:pay_invoice", payment)
        early = await asyncio.to_thread(example, "resume", url=server.url, cwd=tmp_path)
        assert early.returncode == 3
        assert early.stdout == f"still waiting for a reviewer in Signoff (request {rid})\n"

        admin = Reviewer(server.url)
        await admin.sign_in_with_link(server.line_matching(r"  login: (http\S+)").group(1))
        await admin.vote(rid, "approve", "matches PO-77")
        resumed = await agent("resume", url=server.url, cwd=tmp_path)
        assert resumed.splitlines() == [
            "  [pay_invoice] paid INV-7: 950.00 USD",
            "agent: Done: paid INV-7: 950.00 USD.",
        ]
        assert not saved.exists()

        await agent("pay", "INV-9", "4200", url=server.url, cwd=tmp_path)
        payment = {"invoice": "INV-9", "amount": 4200.0}
        rid = await pending_request(server.url, KEY, "tool:pay_invoice", payment)
        await admin.vote(rid, "reject", "duplicate of INV-6")
        await admin.aclose()
        refused = await agent("resume", "--wait", "30", url=server.url, cwd=tmp_path)
        assert "[pay_invoice]" not in refused
        assert refused.startswith("agent: I did not pay.") and "duplicate of INV-6" in refused
        assert not saved.exists()
