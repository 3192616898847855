"""Console logging: quiet by default, levels and JSON lines on request, request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.core import logs
from bot.server.request_ids import RequestIdFromPath


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in logs.CHATTY}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in chatty.items():
        logging.getLogger(name).setLevel(was)


def emit() -> None:
    logging.getLogger("apscheduler.executors.default").info('Running job "run_outbox"')
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0003 -> 0004")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /healthz" 200')
    logging.getLogger("signoff.watch").info("warning sign cleared: escalation_rate")
    logging.getLogger("apscheduler.scheduler").warning("job missed by 3 seconds")


def test_the_default_shows_our_info_and_only_the_libraries_warnings() -> None:
    out = io.StringIO()
    logs.configure("INFO", "text", out)
    emit()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "INFO signoff.watch: warning sign cleared" in lines[0]
    assert "WARNING apscheduler.scheduler: job missed" in lines[1]


def test_debug_shows_everything_and_warning_hides_our_info() -> None:
    out = io.StringIO()
    logs.configure("debug", "text", out)
    emit()
    assert len(out.getvalue().splitlines()) == 5
    quiet = io.StringIO()
    logs.configure("WARNING", "text", quiet)
    emit()
    assert [line.split(" ", 3)[2:3] for line in quiet.getvalue().splitlines()] == [["WARNING"]]


def test_json_lines_carry_the_request_id_when_there_is_one() -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    log = logging.getLogger("signoff.outbox")
    log.info("no request here")
    with logs.request_context("req_01ABC"):
        log.warning("webhook for %s failed", "invoice-bot")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("card update failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("request_id") for line in lines] == [None, "req_01ABC", "req_01ABC"]
    assert lines[1]["message"] == "webhook for invoice-bot failed"
    assert lines[1]["level"] == "WARNING" and lines[1]["logger"] == "signoff.outbox"
    assert lines[1]["time"].endswith("+00:00")
    assert "RuntimeError: boom" in lines[2]["exception"]


def test_configuring_twice_keeps_one_handler_and_bad_values_are_refused() -> None:
    out = io.StringIO()
    logs.configure("INFO", "text", out)
    logs.configure("INFO", "text", out)
    logging.getLogger("signoff").info("once")
    assert out.getvalue().count("once") == 1
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.configure("loud")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure("INFO", "xml")


async def test_the_request_id_in_a_path_reaches_the_lines_logged_meanwhile() -> None:
    seen: list[str | None] = []

    async def app(scope: object, receive: object, send: object) -> None:
        seen.append(logs._request_id.get())

    middleware = RequestIdFromPath(app)  # type: ignore[arg-type]
    for path in ("/v1/requests/req_01XYZ/wait", "/requests/req_02", "/v1/requests", "/"):
        await middleware({"type": "http", "path": path}, None, None)  # type: ignore[arg-type]
    assert seen == ["req_01XYZ", "req_02", None, None]
