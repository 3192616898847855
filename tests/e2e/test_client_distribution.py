"""The agent SDK installed alone: its own virtual environment, no server, against a live server.

`pip install ./client` must bring only httpx, pydantic and standardwebhooks; importing the
package must stay light; and the client from that environment must work against a real
`signoff serve`.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tests.e2e.serve import serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ["fastapi", "sqlalchemy", "slack_bolt", "botbuilder", "aiohttp", "cel", "bot"]

USE_CLIENT = """
import json, sys
from signoff_client import SignoffClient
with SignoffClient(sys.argv[1], sys.argv[2]) as signoff:
    answer = signoff.request_approval(
        {"kind": "payment", "summary": "Pay INV-9", "payload": {"invoice": "INV-9"}},
        0.95, thread_id="t-9", amount=5000, currency="USD",
    )
    detail = signoff.get(answer.id)
print(json.dumps({"status": answer.status, "reasons": answer.reasons, "tier": detail.tier}))
"""

COUNT_MODULES = """
import importlib.util, json, sys, time
started = time.perf_counter()
import signoff_client
elapsed = time.perf_counter() - started
print(json.dumps({
    "modules": len(sys.modules),
    "seconds": elapsed,
    "server_only": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
}))
"""


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("client-venv")
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT / "client")],
        check=True,
        env=env,
        timeout=300,
    )
    return python


def run_python(python: Path, script: str, *args: str, cwd: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_sdk_installs_alone_and_imports_light(client_python: Path, tmp_path: Path) -> None:
    found = run_python(client_python, COUNT_MODULES, *SERVER_ONLY, cwd=tmp_path)
    assert found["server_only"] == [], "the SDK's environment holds server packages"
    modules = found["modules"]
    assert isinstance(modules, int) and modules < 150, f"import signoff_client loads {modules}"


def test_the_sdk_from_its_own_environment_talks_to_a_live_server(
    client_python: Path, tmp_path: Path
) -> None:
    with serve(tmp_path) as server:
        answer = run_python(client_python, USE_CLIENT, server.url, server.api_key, cwd=tmp_path)
    assert answer == {"status": "pending", "reasons": ["high_value_transaction"], "tier": "manager"}


@pytest.fixture(scope="module")
def mcp_client_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install './client[mcp]'` alone: what an agent needs for `signoff-mcp`."""
    target = tmp_path_factory.mktemp("client-mcp-venv")
    venv.create(target, with_pip=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"{ROOT / 'client'}[mcp]",
        ],
        check=True,
        env=env,
        timeout=600,
    )
    return target / "bin"


async def test_signoff_mcp_from_the_sdk_alone_gates_a_tool_call(
    mcp_client_bin: Path, tmp_path: Path
) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from tests.support.mcp import UPSTREAM, agent_env

    found = run_python(mcp_client_bin / "python", COUNT_MODULES, *SERVER_ONLY, cwd=tmp_path)
    assert found["server_only"] == [], "the SDK's environment holds server packages"
    book = tmp_path / "ledger.jsonl"
    with serve(tmp_path) as server:
        env = {**agent_env(server.url, server.api_key), "PYTHONPATH": ""}
        gateway = StdioServerParameters(
            command=str(mcp_client_bin / "signoff-mcp"),
            args=["gateway", "--agent", "demo", "--upstream", f"{UPSTREAM} --ledger {book}"],
            env=env,
            cwd=ROOT,
        )
        async with stdio_client(gateway) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("get_balance", {"account": "ACC-2"})
    assert result.structured_content == {"account": "ACC-2", "balance": 80.0, "currency": "EUR"}
