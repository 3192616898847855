"""Formatting for the web pages: durations, JSON, and the Jinja environment.

Money, percentages and times go through the engine's `Wording`, so the inbox, the item
page, the audit page and the chat cards write them the same way, in the configured locale
and time zone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot.core.domain import ApprovalRequest, as_utc, isoformat, readable
from bot.core.wording import Wording

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


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def approvals(request: ApprovalRequest) -> str:
    return f"{len(request.approvals_for_current_action())} of {request.approvals_required}"


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple)


def entries(value: Any) -> list[tuple[str | int, Any]]:
    """An object's keys and values, or a list's positions and items."""
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    return list(enumerate(value))


class Formats:
    """The page filters that write money, percentages and times through one `Wording`."""

    def __init__(self, wording: Wording) -> None:
        self.wording = wording

    def money(self, amount: float | None, currency: str = "") -> str:
        return "—" if not amount else self.wording.money(amount, currency)

    def percent(self, value: float | None) -> str:
        return "—" if value is None else self.wording.percent(value)

    def moment(self, at: datetime | None) -> str:
        """ "Mon, Jan 5, 9:00 AM" in the configured zone; "" for no time."""
        return self.wording.moment(as_utc(at)) if at else ""

    def time_tag(self, at: datetime | None, text: str | None = None) -> Markup:
        """A `<time>` element: the moment for people, ISO 8601 for machines."""
        if at is None:
            return Markup("")
        shown = self.moment(at) if text is None else text
        return Markup('<time datetime="{}">{}</time>').format(isoformat(at), shown)

    def value(self, value: Any) -> str:
        """One payload leaf as a reviewer reads it: numbers grouped, yes/no, "—" for null."""
        if value is None or value == "":
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            return self.wording.number(value)
        if isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        return str(value)


def label(key: str) -> str:
    """A payload key as a field label: `invoice_id` -> "Invoice id"."""
    return readable(key.replace("-", "_")) if key else "—"


def path_label(path: str) -> str:
    """A changed leaf's dotted path for people: `vendor.lines.0.amount` -> "Vendor / Lines /
    1 / Amount" (positions count from 1)."""
    return " / ".join(
        str(int(part) + 1) if part.isdigit() else label(part) for part in path.split(".")
    )


def environment(wording: Wording) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    formats = Formats(wording)
    env.filters.update(
        duration=duration,
        money=formats.money,
        percent=formats.percent,
        pretty_json=pretty_json,
        iso=isoformat,
        short_time=formats.moment,
        time_tag=formats.time_tag,
        leaf=formats.value,
        label=label,
        path_label=path_label,
        approvals=approvals,
    )
    env.globals.update(
        time_left=time_left,
        ago=ago,
        is_mapping=is_mapping,
        is_sequence=is_sequence,
        entries=entries,
        wording=wording,
    )
    return env
