"""Formatting for the web pages: durations, money, JSON, and the Jinja environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.core.domain import ApprovalRequest, as_utc, isoformat

TEMPLATES_DIR = Path(__file__).parent / "templates"


def duration(seconds: float) -> str:
    """`45s`, `12m`, `1h 05m`, `2d 3h`: short enough for a table cell."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def time_left(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return "no deadline"
    left = (as_utc(deadline) - as_utc(now)).total_seconds()
    if left < 0:
        return f"overdue {duration(-left)}"
    return f"{duration(left)} left"


def ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    return f"{duration((as_utc(now) - as_utc(at)).total_seconds())} ago"


def money(amount: float, currency: str) -> str:
    if not amount:
        return "—"
    text = f"{amount:,.2f}".removesuffix(".00")
    return f"{text} {currency}".strip()


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short_time(at: datetime | None) -> str:
    """`2026-01-05 09:00:00 UTC`, for people; the `datetime` attribute carries ISO 8601."""
    return as_utc(at).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def approvals(request: ApprovalRequest) -> str:
    return f"{len(request.approvals_for_current_action())} of {request.approvals_required}"


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration,
        money=money,
        percent=percent,
        pretty_json=pretty_json,
        iso=isoformat,
        short_time=short_time,
        approvals=approvals,
    )
    env.globals.update(time_left=time_left, ago=ago, is_mapping=is_mapping, is_sequence=is_sequence)
    return env
