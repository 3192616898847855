"""examples/mcp_gateway, run as its README says: Signoff with the example's config, the
example's MCP client calling the payments server through `signoff mcp gateway`, and the
built-in admin approving in the web inbox through the login link serve prints."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve import serve
from tests.support.http_receiver import free_port
from tests.support.mcp import ROOT, Reviewer, agent_env, paid, pending_request

pytestmark = pytest.mark.slow

KEY = "sk_example_mcp_agent_local_only"  # published in examples/mcp_gateway/README.md


def example(*args: str, url: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.mcp_gateway",
            "--ledger",
            str(cwd / "ledger.jsonl"),
            *args,
        ],
        cwd=ROOT,
        env={**agent_env(url, KEY), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_the_readme_walk_through(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "SIGNOFF_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    config = ROOT / "examples" / "mcp_gateway" / "signoff.yaml"
    with serve(tmp_path, config=config, env=env, port=port) as server:
        tools = example("tools", url=server.url, cwd=tmp_path)
        out, err = tools.communicate(timeout=60)
        assert tools.returncode == 0, err
        assert "get_balance:" in out and "pay:" in out

        balance = example(
            "call", "get_balance", '{"account": "ACC-1"}', url=server.url, cwd=tmp_path
        )
        out, err = balance.communicate(timeout=60)
        assert balance.returncode == 0, err
        assert '"balance": 12500.0' in out

        payment = {"invoice": "INV-7", "amount": 120, "to": "Paper Co"}
        pay = example(
            "call",
            "pay",
            '{"invoice": "INV-7", "amount": 120, "to": "Paper Co"}',
            url=server.url,
            cwd=tmp_path,
        )
        rid = await pending_request(server.url, KEY, "mcp:pay", payment, within=60)
        assert pay.poll() is None and paid(tmp_path / "ledger.jsonl") == []
        admin = Reviewer(server.url)
        await admin.sign_in_with_link(server.line_matching(r"  login: (http\S+)").group(1))
        await admin.vote(rid, "approve", "the order matches")
        await admin.aclose()
        out, err = await asyncio.to_thread(pay.communicate, timeout=60)
        assert pay.returncode == 0, err
        assert out.startswith("pay done:") and '"invoice": "INV-7"' in out
        assert "held for approval in Signoff" in err
        assert [p["invoice"] for p in paid(tmp_path / "ledger.jsonl")] == ["INV-7"]
