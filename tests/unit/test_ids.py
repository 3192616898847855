"""Ids sort in the order they were made, even many within one millisecond."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.domain import new_id


def test_ids_made_within_one_millisecond_sort_in_creation_order() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_id("req", at) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_carry_their_time_first() -> None:
    early = new_id("req", datetime(2026, 1, 1, tzinfo=UTC))
    late = new_id("req", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    earlier_again = new_id("req", datetime(2025, 12, 31, tzinfo=UTC))
    assert earlier_again < early < late
