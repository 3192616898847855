import random
from datetime import timedelta

import pytest

from bot.core.retry import JITTER, MAX_ATTEMPTS, RETRY_HORIZON, RETRY_SCHEDULE, next_delay

DAY = 24 * 3600


class _FixedRandom(random.Random):
    """A Random whose draws are pinned, to hit the exact ends of the jitter range."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_schedule_backs_off_then_goes_hourly() -> None:
    assert RETRY_SCHEDULE[:6] == (5, 30, 120, 600, 1800, 3600)
    assert set(RETRY_SCHEDULE[5:]) == {3600}
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)


def test_schedule_stops_before_waiting_more_than_a_day() -> None:
    assert RETRY_HORIZON == timedelta(hours=24)
    assert sum(RETRY_SCHEDULE) <= DAY
    assert sum(RETRY_SCHEDULE) + 3600 > DAY
    # 5 s + 30 s + 2 m + 10 m + 30 m + 1 h = 6155 s, then 22 more hours fit into the day.
    assert sum(RETRY_SCHEDULE) == 6155 + 22 * 3600


def test_max_attempts_is_first_try_plus_one_per_wait() -> None:
    assert MAX_ATTEMPTS == len(RETRY_SCHEDULE) + 1 == 29


@pytest.mark.parametrize("attempts", range(1, MAX_ATTEMPTS))
def test_every_delay_is_within_ten_percent_of_the_schedule(attempts: int) -> None:
    scheduled = RETRY_SCHEDULE[attempts - 1]
    rng = random.Random(attempts)
    for _ in range(200):
        delay = next_delay(attempts, None, rng)
        assert delay is not None
        assert scheduled * 0.9 <= delay.total_seconds() <= scheduled * 1.1


def test_jitter_reaches_both_ends_of_its_range() -> None:
    low = next_delay(2, None, _FixedRandom(0.0))
    high = next_delay(2, None, _FixedRandom(1.0))
    assert low == timedelta(seconds=30 * (1 - JITTER))
    assert high == timedelta(seconds=30 * (1 + JITTER))
    assert JITTER == pytest.approx(0.10)


def test_jitter_spreads_deliveries_that_failed_together() -> None:
    rng = random.Random(42)
    delays = {next_delay(4, None, rng) for _ in range(50)}
    assert len(delays) == 50


def test_same_seed_gives_same_delays() -> None:
    first = [next_delay(n, None, random.Random(7)) for n in range(1, MAX_ATTEMPTS)]
    again = [next_delay(n, None, random.Random(7)) for n in range(1, MAX_ATTEMPTS)]
    assert first == again


def test_exhausted_schedule_means_dead() -> None:
    rng = random.Random(1)
    assert next_delay(MAX_ATTEMPTS - 1, None, rng) is not None
    assert next_delay(MAX_ATTEMPTS, None, rng) is None
    assert next_delay(MAX_ATTEMPTS + 10, None, rng) is None


def test_exhaustion_comes_at_about_a_day_of_waiting() -> None:
    rng = random.Random(3)
    waited = timedelta()
    attempts = 1
    while (delay := next_delay(attempts, None, rng)) is not None:
        waited += delay
        attempts += 1
    assert attempts == MAX_ATTEMPTS
    # The unjittered total is 23.7 h; jitter averages out over 28 waits.
    assert timedelta(hours=22) < waited < timedelta(hours=25)


def test_longer_retry_after_wins() -> None:
    delay = next_delay(1, 90.0, _FixedRandom(1.0))
    assert delay == timedelta(seconds=90)


def test_retry_after_is_never_undercut_by_jitter() -> None:
    # 4.8 s lies inside the jitter range of the 5 s step: the wait must still be >= 4.8 s.
    for seed in range(100):
        delay = next_delay(1, 4.8, random.Random(seed))
        assert delay is not None
        assert delay.total_seconds() >= 4.8


def test_shorter_retry_after_does_not_speed_up_the_schedule() -> None:
    delay = next_delay(6, 1.0, _FixedRandom(0.5))
    assert delay == timedelta(seconds=3600)


def test_retry_after_is_capped_at_a_day() -> None:
    assert next_delay(1, 10 * DAY, random.Random(0)) == RETRY_HORIZON
    assert next_delay(1, float("inf"), random.Random(0)) == RETRY_HORIZON


def test_nan_retry_after_is_ignored() -> None:
    assert next_delay(3, float("nan"), _FixedRandom(0.5)) == timedelta(seconds=120)


def test_retry_after_does_not_revive_a_dead_delivery() -> None:
    assert next_delay(MAX_ATTEMPTS, 60.0, random.Random(0)) is None


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next_delay(0, None, random.Random(0))
