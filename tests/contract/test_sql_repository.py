"""What only the SQL repository can get wrong: tampering, concurrency, drivers, indexes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import DateTime, text
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc

from bot.core.domain import (
    AuditEvent,
    Change,
    IdempotencyRecord,
    OutboxKind,
    audit_hash,
    verify_chain,
)
from bot.core.errors import ConfigError, StorageError
from storage import SqlRepository, open_repository
from storage.sql import async_url
from tests.contract._builders import at, event, outbox, request

LEASE = timedelta(seconds=60)
UNREACHABLE = "postgresql://postgres:s3cret@127.0.0.1:1/test"


async def raw(repo: SqlRepository, sql: str, **params: Any) -> None:
    async with repo.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def chain_of_five(repo: SqlRepository) -> None:
    await repo.apply(
        Change(audit=tuple(event(name, at=at(n)) for n, name in enumerate("abcde", start=1)))
    )


# -- tamper detection -------------------------------------------------------------------


async def test_an_edited_event_is_named(sql_repository: SqlRepository) -> None:
    await chain_of_five(sql_repository)
    await raw(sql_repository, "UPDATE audit_events SET reason = 'forged' WHERE seq = 3")

    result = verify_chain(await sql_repository.audit_records())

    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.problem == "event 3 was altered after it was written"


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    sql_repository: SqlRepository,
) -> None:
    await chain_of_five(sql_repository)
    records = await sql_repository.audit_records()
    forged = dataclasses.replace(records[2].event, reason="forged")
    digest = audit_hash(records[2].prev_hash, 3, forged)
    await raw(
        sql_repository,
        "UPDATE audit_events SET reason = 'forged', hash = :digest WHERE seq = 3",
        digest=digest,
    )

    result = verify_chain(await sql_repository.audit_records())

    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.problem == "event 4 does not follow its predecessor"


async def test_a_deleted_event_is_named(sql_repository: SqlRepository) -> None:
    await chain_of_five(sql_repository)
    await raw(sql_repository, "DELETE FROM audit_events WHERE seq = 2")

    result = verify_chain(await sql_repository.audit_records())

    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert result.problem == "event 2 is removed (found event 3 in its place)"


async def test_swapped_events_are_named(sql_repository: SqlRepository) -> None:
    await chain_of_five(sql_repository)
    # Three steps: a unique primary key cannot hold both rows at one seq mid-swap.
    await raw(sql_repository, "UPDATE audit_events SET seq = 1000 WHERE seq = 2")
    await raw(sql_repository, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    await raw(sql_repository, "UPDATE audit_events SET seq = 3 WHERE seq = 1000")

    result = verify_chain(await sql_repository.audit_records())

    assert (result.ok, result.first_bad_seq) == (False, 2)


def _json() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    )


# PostgreSQL's text type cannot hold NUL; JSON strings can (they are escaped).
_words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
_zones = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_events = st.builds(
    AuditEvent,
    event=_words,
    at=st.datetimes(datetime(1970, 1, 2), datetime(2200, 1, 1), timezones=_zones),
    request_id=st.none() | _words,
    actor=_words,
    channel=_words,
    reason=st.none() | _words,
    risk=st.none() | st.sampled_from(["low", "medium", "high"]),
    data=st.dictionaries(st.text(max_size=5), _json(), max_size=4),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=st.lists(_events, min_size=1, max_size=3))
async def test_any_event_round_trips_with_a_valid_hash(
    sql_repository: SqlRepository, events: list[AuditEvent]
) -> None:
    # The repository outlives the examples, so each one appends to one growing chain.
    before = len(await sql_repository.audit_records())

    await sql_repository.apply(Change(audit=tuple(events)))

    records = await sql_repository.audit_records()
    assert [r.event for r in records[before:]] == events
    assert verify_chain(records).ok


# -- concurrency --------------------------------------------------------------------------


async def test_concurrent_claimers_never_share_a_message(sql_url: str) -> None:
    first, second = SqlRepository.connect(sql_url), SqlRepository.connect(sql_url)
    try:
        await first.apply(Change(outbox=tuple(outbox(f"out_{n:02d}") for n in range(50))))

        async def drain(repo: SqlRepository, owner: str) -> list[str]:
            taken: list[str] = []
            while batch := await repo.claim_outbox(owner, at(10), LEASE, 3):
                taken.extend(m.id for m in batch)
                await asyncio.sleep(0)
            return taken

        mine, yours = await asyncio.gather(drain(first, "one"), drain(second, "two"))
    finally:
        await first.close()
        await second.close()

    assert not set(mine) & set(yours)
    assert sorted(mine + yours) == [f"out_{n:02d}" for n in range(50)]
    assert len(mine + yours) == 50


async def test_concurrent_applies_keep_the_chain_contiguous(sql_url: str) -> None:
    repos = [SqlRepository.connect(sql_url) for _ in range(2)]
    try:
        await asyncio.gather(
            *(
                repos[n % 2].apply(
                    Change(
                        request=request(f"req_{n:02d}"),
                        audit=tuple(event(name, request_id=f"req_{n:02d}") for name in "xyz"),
                    )
                )
                for n in range(20)
            )
        )
        records = await repos[0].audit_records()
    finally:
        for repo in repos:
            await repo.close()

    assert [r.seq for r in records] == list(range(1, 61))
    assert verify_chain(records).ok
    # Each transaction's events sit together: the head lock admits one append at a time.
    for start in range(0, 60, 3):
        group = records[start : start + 3]
        assert len({r.event.request_id for r in group}) == 1
        assert [r.event.event for r in group] == ["x", "y", "z"]


async def test_changes_applied_together_share_a_transaction_and_keep_the_chain(
    sql_repository: SqlRepository,
) -> None:
    commits = 0

    def counted(*_: Any) -> None:
        nonlocal commits
        commits += 1

    sa_event.listen(sql_repository.engine.sync_engine, "commit", counted)
    await asyncio.gather(
        *(
            sql_repository.apply(
                Change(
                    request=request(f"req_{n:02d}"),
                    audit=tuple(event(name, request_id=f"req_{n:02d}") for name in "xy"),
                )
            )
            for n in range(20)
        )
    )
    records = await sql_repository.audit_records()
    assert commits < 20  # the burst queued behind the first change's transaction
    assert [r.seq for r in records] == list(range(1, 41))
    assert verify_chain(records, await sql_repository.audit_head()).ok
    for n in range(20):
        assert await sql_repository.get(f"req_{n:02d}") is not None


async def test_a_refused_change_does_not_take_its_batch_with_it(
    sql_repository: SqlRepository,
) -> None:
    await sql_repository.apply(Change(request=request("req_taken")))
    stale = Change(request=request("req_taken", tier="senior"), expected_version=7)
    fresh = [Change(request=request(f"req_{n}"), audit=(event(f"e{n}"),)) for n in range(5)]
    results = await asyncio.gather(
        *(sql_repository.apply(c) for c in (fresh[0], stale, *fresh[1:])),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "VersionConflict", *["NoneType"] * 4]
    for n in range(5):
        assert await sql_repository.get(f"req_{n}") is not None
    records = await sql_repository.audit_records()
    assert sorted(r.event.event for r in records) == [f"e{n}" for n in range(5)]
    assert verify_chain(records, await sql_repository.audit_head()).ok


async def test_concurrent_updates_of_one_version_let_exactly_one_win(sql_url: str) -> None:
    first, second = SqlRepository.connect(sql_url), SqlRepository.connect(sql_url)
    try:
        await first.apply(Change(request=request()))
        results = await asyncio.gather(
            first.apply(
                Change(request=request(tier="senior"), expected_version=1, audit=(event("a"),))
            ),
            second.apply(
                Change(request=request(tier="manager"), expected_version=1, audit=(event("b"),))
            ),
            return_exceptions=True,
        )
        stored = await first.get("req_0001")
        records = await first.audit_records()
    finally:
        await first.close()
        await second.close()

    assert sorted(type(r).__name__ for r in results) == ["NoneType", "VersionConflict"]
    winner = "senior" if results[0] is None else "manager"
    assert stored is not None
    assert (stored.tier, stored.version) == (winner, 2)
    assert [r.event.event for r in records] == ["a" if winner == "senior" else "b"]


async def test_concurrent_submits_with_one_idempotency_key_store_one_request(
    sql_url: str,
) -> None:
    first, second = SqlRepository.connect(sql_url), SqlRepository.connect(sql_url)

    def submit(request_id: str) -> Change:
        record = IdempotencyRecord("invoice-bot", "k", "ab" * 32, request_id, {}, at(0))
        return Change(request=request(request_id), idempotency=record, audit=(event(),))

    try:
        results = await asyncio.gather(
            first.apply(submit("req_a")),
            second.apply(submit("req_b")),
            return_exceptions=True,
        )
        stored = [await first.get("req_a"), await first.get("req_b")]
        record = await first.find_idempotency("invoice-bot", "k")
        records = await first.audit_records()
    finally:
        await first.close()
        await second.close()

    assert sorted(type(r).__name__ for r in results) == ["IdempotencyRace", "NoneType"]
    winner = "req_a" if results[0] is None else "req_b"
    assert [r.id for r in stored if r is not None] == [winner]
    assert record is not None
    assert record.request_id == winner
    assert len(records) == 1


async def test_sqlite_readers_do_not_wait_for_the_write_lock(tmp_path: Path) -> None:
    repo = await open_repository(f"sqlite:///{tmp_path / 'signoff.db'}", migrate=True)
    try:
        await repo.apply(Change(request=request()))
        async with repo.engine.begin() as writer:
            # This transaction holds SQLite's write lock (BEGIN IMMEDIATE) until the block ends.
            await writer.execute(text("UPDATE requests SET tier = 'held'"))
            got = await asyncio.wait_for(repo.get("req_0001"), timeout=2)
        assert got is not None
        assert got.tier == "junior"
    finally:
        await repo.close()


# -- driver setup, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("sqlite:///./signoff.db", "sqlite+aiosqlite:///./signoff.db"),
        ("sqlite+pysqlite:////var/lib/s.db", "sqlite+aiosqlite:////var/lib/s.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5433/db", "postgresql+psycopg://u:p@h:5433/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            "postgresql+psycopg://u@h/db?sslmode=require",
            "postgresql+psycopg://u@h/db?sslmode=require",
        ),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_user_urls_map_to_the_async_drivers(given_url: str, expected: str) -> None:
    assert async_url(given_url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "not a url", ""])
def test_unsupported_urls_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SqlRepository.connect(bad)
    assert raised.value.path == "database_url"


async def test_unreachable_postgres_fails_fast_without_leaking_the_password() -> None:
    repo = SqlRepository.connect(UNREACHABLE)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as raised:
            await repo.ping()
        with pytest.raises(StorageError):
            await repo.get("req_0001")
    finally:
        await repo.close()
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)


async def test_open_repository_on_an_unreachable_database_raises_storage_error() -> None:
    with pytest.raises(StorageError) as raised:
        await open_repository(UNREACHABLE, migrate=True)
    assert "s3cret" not in str(raised.value)
    with pytest.raises(StorageError):
        await open_repository(UNREACHABLE, migrate=False)


async def test_sqlite_in_a_missing_directory_raises_storage_error(tmp_path: Path) -> None:
    repo = SqlRepository.connect(f"sqlite:///{tmp_path / 'missing' / 'signoff.db'}")
    try:
        with pytest.raises(StorageError, match="cannot use the database"):
            await repo.ping()
    finally:
        await repo.close()


async def test_an_unmigrated_database_raises_storage_error(tmp_path: Path) -> None:
    repo = SqlRepository.connect(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        await repo.ping()
        with pytest.raises(StorageError, match="requests"):
            await repo.get("req_0001")
    finally:
        await repo.close()


async def test_open_repository_migrates_once_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'signoff.db'}"
    repo = await open_repository(url, migrate=True)
    try:
        await repo.apply(Change(request=request(), audit=(event(),)))
    finally:
        await repo.close()

    again = await open_repository(url, migrate=True)
    try:
        assert await again.get("req_0001") is not None
        assert verify_chain(await again.audit_records()).checked == 1
        async with again.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await again.close()


async def test_foreign_keys_hold_votes_to_their_request(sql_repository: SqlRepository) -> None:
    with pytest.raises(sa_exc.IntegrityError):
        await raw(
            sql_repository,
            "INSERT INTO votes (request_id, seq, reviewer, name, verdict, rationale, at, "
            "channel, action_sha256) VALUES ('req_none', 1, 'r', 'n', 'approve', '', "
            "'2026-01-01 00:00:00', 'web', 'x')",
        )


# -- indexes ----------------------------------------------------------------------------


@contextmanager
def captured(repo: SqlRepository, table: str) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with parameters) the repository sends that read `table`."""
    seen: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if f"FROM {table}" in statement:
            seen.append((statement, parameters))

    sa_event.listen(repo.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(repo.engine.sync_engine, "before_cursor_execute", record)


async def plan(repo: SqlRepository, statement: str, parameters: Any) -> str:
    async with repo.engine.connect() as conn:
        if repo.engine.dialect.name == "sqlite":
            found = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " ".join(str(row[-1]) for row in found)
        # Tiny tables favour a sequential scan; forbidding it shows whether the index fits.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        found = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return " ".join(str(row[0]) for row in found)


@pytest.mark.parametrize(
    ("sweep", "index"),
    [
        ("due_for_sla", "ix_requests_deadline_pending"),
        ("due_for_reminder", "ix_requests_remind_pending"),
    ],
)
async def test_sweeps_use_the_partial_indexes(
    sql_repository: SqlRepository, sweep: str, index: str
) -> None:
    await sql_repository.apply(Change(request=request()))
    with captured(sql_repository, "requests") as seen:
        await getattr(sql_repository, sweep)(at(10_000), 10)

    [(statement, parameters)] = seen
    assert index in await plan(sql_repository, statement, parameters)


async def test_claims_use_the_outbox_index(sql_repository: SqlRepository) -> None:
    await sql_repository.apply(Change(outbox=(outbox("out_1", kind=OutboxKind.REMIND),)))
    with captured(sql_repository, "outbox") as seen:
        await sql_repository.claim_outbox("w", at(10), LEASE, 10)

    statement, parameters = seen[0]
    assert "ix_outbox_status_next_attempt_at" in await plan(sql_repository, statement, parameters)


async def test_timestamps_are_stored_as_utc(sql_repository: SqlRepository) -> None:
    plus_five = timezone(timedelta(hours=5))
    await sql_repository.apply(
        Change(request=request(created_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_five)))
    )
    async with sql_repository.engine.connect() as conn:
        query = text("SELECT created_at FROM requests").columns(created_at=DateTime())
        stored = (await conn.execute(query)).scalar_one()
    # SQLite hands back naive text-derived values, PostgreSQL aware ones: both must say 07:00 UTC.
    as_utc = stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)
    assert as_utc == datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    if stored.tzinfo is None:
        assert stored.hour == 7
