"""How the pages write durations, money and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.web import _present
from bot.core.wording import Wording
from routing import default_policy

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


def test_money_percent_and_times_go_through_the_wording() -> None:
    formats = _present.Formats(Wording(default_policy(), "en_US", "America/New_York"))
    assert formats.money(0, "USD") == "—"
    assert formats.money(5000, "USD") == "$5,000.00"
    assert formats.money(950, "EUR") == "€950.00"
    assert formats.money(12.5, "") == "12.5"
    assert formats.percent(None) == "—" and formats.percent(0.625) == "62%"
    # The configured zone, not UTC: 09:00 UTC is 4 AM in New York in January.
    assert formats.moment(NOW) == "Mon, Jan 5, 4:00\u202fAM"
    assert formats.moment(None) == ""
    assert str(formats.time_tag(NOW)) == (
        '<time datetime="2026-01-05T09:00:00Z">Mon, Jan 5, 4:00\u202fAM</time>'
    )
    german = _present.Formats(Wording(default_policy(), "de_DE", "Europe/Berlin"))
    assert german.money(5000, "EUR") == "5.000,00\xa0€"
    assert german.moment(NOW) == "Mo., 5. Jan., 10:00"
    assert _present.pretty_json({"b": 1, "a": "ü"}) == '{\n  "a": "ü",\n  "b": 1\n}'


def test_payload_leaves_read_as_a_reviewer_reads_them() -> None:
    formats = _present.Formats(Wording(default_policy()))
    assert [formats.value(v) for v in (1234.5, True, False, None, "", "ACME")] == [
        "1,234.5",
        "yes",
        "no",
        "—",
        "—",
        "ACME",
    ]
    assert _present.label("invoice_id") == "Invoice id"
    assert _present.label("due-date") == "Due date"
    assert _present.path_label("vendor.lines.0.unit_price") == "Vendor / Lines / 1 / Unit price"
    assert _present.entries({"a": 1}) == [("a", 1)]
    assert _present.entries(["x", "y"]) == [(0, "x"), (1, "y")]
