"""How the pages write durations, money and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.web import _present

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_durations() -> None:
    assert [_present.duration(s) for s in (-3, 42, 720, 3900, 90000)] == [
        "0s",
        "42s",
        "12m",
        "1h 05m",
        "1d 1h",
    ]


def test_time_left_and_ago() -> None:
    assert _present.time_left(None, NOW) == "no deadline"
    assert _present.time_left(NOW + timedelta(minutes=12), NOW) == "12m left"
    assert _present.time_left(NOW - timedelta(minutes=3), NOW) == "overdue 3m"
    naive = (NOW + timedelta(hours=2)).replace(tzinfo=None)
    assert _present.time_left(naive, NOW) == "2h 00m left"
    assert _present.ago(NOW - timedelta(seconds=5), NOW) == "5s ago"
    assert _present.ago(None, NOW) == ""


def test_money_percent_and_times() -> None:
    assert _present.money(0, "USD") == "—"
    assert _present.money(5000, "USD") == "5,000 USD"
    assert _present.money(12.5, "") == "12.50"
    assert _present.percent(None) == "—" and _present.percent(0.625) == "62%"
    assert _present.short_time(NOW) == "2026-01-05 09:00:00 UTC"
    assert _present.short_time(None) == ""
    assert _present.pretty_json({"b": 1, "a": "ü"}) == '{\n  "a": "ü",\n  "b": 1\n}'
