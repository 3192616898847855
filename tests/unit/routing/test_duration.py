"""parse_duration() and format_duration()."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from routing import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 10 m ", timedelta(minutes=10)),
        ("90", timedelta(seconds=90)),
        ("0.25", timedelta(milliseconds=250)),
        (45, timedelta(seconds=45)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_parses(text: str | int | float | timedelta, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "value", ["15x", "", "m", "15 minutes", "1,5h", "-5m", "15M", "1e3s", [15], None, True]
)
def test_refuses_what_is_not_a_duration(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)  # type: ignore[arg-type]

    assert str(caught.value) == f"{value!r} is not a duration: use a number and a unit s, m, h or d"


@pytest.mark.parametrize("value", ["0s", 0, -3, 0.0, timedelta(0), timedelta(seconds=-1)])
def test_refuses_zero_and_negative(value: object) -> None:
    with pytest.raises(ValueError, match="must be greater than zero"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_refuses_non_finite(value: object) -> None:
    with pytest.raises(ValueError, match="use a number and a unit"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["99999999999999d", "9" * 400 + "d", 1e18])
def test_refuses_what_does_not_fit(value: object) -> None:
    with pytest.raises(ValueError, match="it is too long"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=2), "2d"),
        (timedelta(hours=4), "4h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=61), "61s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(microseconds=1), "0.000001s"),
    ],
)
def test_formats_in_the_largest_exact_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.timedeltas(min_value=timedelta(microseconds=1)))
@example(timedelta(days=99421, microseconds=1))
def test_format_then_parse_is_the_identity(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
