"""`signoff agents stop|start|list` on the server host, against a real SQLite database."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
from pathlib import Path

import pytest

from bot.core.domain import Status
from bot.server.app import build_services
from bot.server.cli import main
from bot.server.config import load_config
from tests.support.world import new_request

CONFIG = """
database_url: sqlite:///{db}
agents:
  - id: invoice-bot
    key_sha256: {digest}
tiers:
  - {{name: junior, sla: 15m, reviewers: [web:jan]}}
  - {{name: manager, sla: 4h, reviewers: [web:max]}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "signoff.yaml"
    digest = hashlib.sha256(b"sk_cli").hexdigest()
    path.write_text(CONFIG.format(db=tmp_path / "signoff.db", digest=digest))
    return path


def _submit_pending(config_file: Path) -> str:
    async def work() -> str:
        services = await build_services(load_config(config_file), start_scheduler=False)
        async with services.stack:
            result = await services.engine.submit("invoice-bot", new_request(confidence=0.2))
            return str(result.response["id"])

    return asyncio.run(work())


def _read(config_file: Path, request_id: str) -> tuple[Status, list[str], list[tuple[str, str]]]:
    async def work() -> tuple[Status, list[str], list[tuple[str, str]]]:
        services = await build_services(load_config(config_file), start_scheduler=False)
        async with services.stack:
            request = await services.engine.get(request_id)
            events = [(r.event.event, r.event.actor) for r in await services.repo.audit_records()]
            return request.status, list(request.reasons), events

    return asyncio.run(work())


def test_stop_list_and_start_from_the_command_line(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = _submit_pending(config_file)
    actor = f"cli:{getpass.getuser()}"

    code = main(
        ["agents", "stop", "invoice-bot", "--reason", "loops", "--config", str(config_file)]
    )
    assert code == 0
    assert f"agent invoice-bot stopped by {actor}" in capsys.readouterr().out
    status, reasons, events = _read(config_file, request_id)
    assert status is Status.REJECTED and "agent_stopped" in reasons
    assert ("stopped", actor) in events and ("resolved", actor) in events

    assert main(["agents", "list", "--config", str(config_file)]) == 0
    assert "invoice-bot\tSTOPPED" in capsys.readouterr().out

    code = main(
        ["agents", "start", "invoice-bot", "--reason", "fixed", "--config", str(config_file)]
    )
    assert code == 0
    assert main(["agents", "list", "--config", str(config_file)]) == 0
    assert "invoice-bot\trunning" in capsys.readouterr().out
    assert ("started", actor) in _read(config_file, request_id)[2]


def test_start_needs_a_reason_and_a_known_agent(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _submit_pending(config_file)
    with pytest.raises(SystemExit):
        main(["agents", "start", "invoice-bot", "--config", str(config_file)])
    capsys.readouterr()
    code = main(["agents", "start", "nobody", "--reason", "x", "--config", str(config_file)])
    assert code == 2 and "no agent 'nobody'" in capsys.readouterr().err
