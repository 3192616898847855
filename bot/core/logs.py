"""Console logging for `signoff serve` and the other commands: level, format, request ids.

The default shows Signoff's own INFO lines and only warnings from the libraries whose INFO
lines are routine chatter (the scheduler logs every job run, Alembic every plugin, uvicorn
every request). `--log-format json` writes one JSON object per line for log shippers; a
line logged while an approval request is being handled carries its `request_id`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "FORMATS",
    "LEVELS",
    "LOG_FORMAT_ENV",
    "LOG_LEVEL_ENV",
    "JsonFormatter",
    "configure",
    "request_context",
]

LOG_LEVEL_ENV = "SIGNOFF_LOG_LEVEL"
LOG_FORMAT_ENV = "SIGNOFF_LOG_FORMAT"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
# Libraries whose INFO lines repeat all day; at the default level only their warnings show.
CHATTY = ("apscheduler", "alembic", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signoff_request_id", default=None
)
_HANDLER_NAME = "signoff-console"


@contextlib.contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Lines logged inside carry `request_id` (None leaves them without one)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and
    `request_id` and `exception` when the line has them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [{request_id}]" if request_id else text


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every logger's lines to `stream` (stderr) at `level`, as text or JSON.

    Raises ValueError for an unknown level or format (the CLI names the flag or variable).
    Calling it again replaces the earlier set-up rather than adding a second handler.
    """
    name = level.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(LEVELS)})")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use text or json)")
    numeric = logging.getLevelName(name)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Asking for DEBUG means asking for everything; otherwise the chatter waits for warnings.
    chatty = numeric if numeric < logging.INFO else max(numeric, logging.WARNING)
    for logger in CHATTY:
        logging.getLogger(logger).setLevel(chatty)
        # uvicorn installs its own handlers unless told not to; ours are the only ones.
        logging.getLogger(logger).propagate = True
