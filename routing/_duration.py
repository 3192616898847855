"""Durations written as a number and a unit (``30s``, ``15m``, ``1.5h``, ``2d``)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_MICROS = 1_000_000
_HINT = "use a number and a unit s, m, h or d"


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Read a positive duration.

    Accepts ``"30s"``, ``"15m"``, ``"1.5h"``, ``"2d"``; a bare number (int, float or a
    numeric string) counts seconds; a ``timedelta`` passes through.

    Raises:
        ValueError: the value is not a duration, or is not greater than zero.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, str):
        match = _PATTERN.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a duration: {_HINT}")
        # Decimal, not float: "8589974400.000001s" must come back to the microsecond.
        result = _exact(Decimal(match[1]) * _UNIT_SECONDS[match[2]], value)
    # bool is an int, but `sla: yes` in YAML is a mistake, not one second.
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration: {_HINT}")
        result = _exact(Decimal(value), value)
    else:
        raise ValueError(f"{value!r} is not a duration: {_HINT}")
    if result <= timedelta(0):
        raise ValueError(f"{value!r} is not a duration: it must be greater than zero")
    return result


def _exact(seconds: Decimal, original: object) -> timedelta:
    try:
        return timedelta(microseconds=round(seconds * _MICROS))
    except OverflowError:
        raise ValueError(f"{original!r} is not a duration: it is too long") from None


def format_duration(value: timedelta) -> str:
    """Write a duration in the largest unit that keeps it exact: ``15m``, ``4h``, ``90s``.

    ``parse_duration(format_duration(d)) == d`` for every positive ``d``.
    """
    micros = value // timedelta(microseconds=1)
    for unit, seconds in _FORMAT_UNITS:
        if micros % (seconds * _MICROS) == 0:
            return f"{micros // (seconds * _MICROS)}{unit}"
    whole, fraction = divmod(micros, _MICROS)
    # Spelled out digit by digit: float repr would give "1e-06s", which does not parse.
    return f"{whole}.{fraction:06d}".rstrip("0") + "s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A pydantic field type: reads what ``parse_duration`` reads, writes ``format_duration``."""
