"""`bot.core.ports.Repository` on SQLAlchemy asyncio: SQLite (aiosqlite) or PostgreSQL (psycopg 3).

Every write is one transaction. Concurrency rests on three mechanisms:

* requests carry a `version`; an update only lands `WHERE id = :id AND version = :expected`;
* outbox claims lease rows (owner, expiry) chosen with `FOR UPDATE SKIP LOCKED` on
  PostgreSQL; on SQLite every write transaction starts with `BEGIN IMMEDIATE`, which takes
  the database's single write lock up front, because SQLAlchemy drops `FOR UPDATE` there;
* the audit chain's tail lives in one `audit_head` row; every append locks it as the last
  step of its transaction, so sequence numbers stay contiguous and each link sees its
  predecessor, while the lock is held only for the moment before commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, RowMapping, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import InstrumentedAttribute

from bot.core.audit_chain import AuditAnchor, AuditKey, UnkeyedAppend, link_events
from bot.core.domain import (
    Action,
    AgentState,
    Alert,
    ApprovalRequest,
    AuditEvent,
    AuditRecord,
    BatchCard,
    BatchStatus,
    CardRef,
    Change,
    IdempotencyRecord,
    LoginFailures,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Page,
    ReasonText,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
    WebSession,
    as_utc,
    isoformat,
)
from bot.core.errors import (
    ConfigError,
    IdempotencyRace,
    StandingExhausted,
    StorageError,
    VersionConflict,
)
from bot.core.lanes import destination
from bot.core.learning import PredictionModel, StandingApproval
from routing import Lane, ReviewState, Risk
from signoff_client.canonical import tolerating_depth
from storage import _learning, _web_sessions
from storage._batch import ApplyBatcher, BatchRefused
from storage._statements import (
    APPEND_AUDIT_POSTGRES,
    AUDIT_HEAD_ID,
    CHILD_COUNTS,
    CLAIM_OUTBOX,
    GET_REQUEST,
    INSERT_AUDIT,
    INSERT_CARDS,
    INSERT_MOVES,
    INSERT_OUTBOX,
    INSERT_VOTES,
    LOCK_AUDIT_HEAD,
    MOVE_AUDIT_HEAD,
    UPDATE_REQUEST,
    DialectStatements,
)
from storage.models import (
    AgentStateRow,
    AlertRow,
    ApiKeyRow,
    AuditEventRow,
    AuditHeadRow,
    BatchCardRow,
    CardRow,
    IdempotencyRow,
    LoginFailureRow,
    LoginTokenRow,
    OutboxRow,
    RequestRow,
    TierMoveRow,
    VoteRow,
    WebSessionRow,
)

__all__ = ["SqlRepository", "async_url", "create_engine", "sqlite_path"]

# SQLite waits this long for the write lock before it reports "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL that does not answer within this many seconds counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_S = 5
# Connections kept open. SQLAlchemy's default (5) made every transaction beyond the fifth
# concurrent one open and close a connection (a PostgreSQL backend, or an aiosqlite thread
# and its pragmas), which cost more than the transaction; beyond the overflow, callers
# queue for a connection instead.
POOL_SIZE = 20
POOL_OVERFLOW = 10

# Read-only work opts out of SQLite's BEGIN IMMEDIATE so readers never queue for the lock.
_READ_ONLY = "signoff_read_only"

# Literal (not bound) so the planners can match the partial indexes' predicate.
_PENDING: ColumnElement[str] = literal_column("'pending'")

_AUDIT_HEAD_ID = AUDIT_HEAD_ID


def async_url(url: str) -> URL:
    """Translate a user's database URL to the async driver Signoff runs on.

    `sqlite:///PATH` (any sqlite driver) becomes `sqlite+aiosqlite:///PATH`;
    `postgresql://...`, `postgres://...` and `postgresql+<driver>://...` become
    `postgresql+psycopg://...` (psycopg 3 in async mode).

    Raises ConfigError (path `database_url`) when the URL cannot be parsed or names
    another database.
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise ConfigError(
            "database_url",
            "not a database URL (expected sqlite:///PATH or postgresql://USER@HOST/DB)",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        _require_psycopg()
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(
        "database_url", f"unsupported database {backend!r} (use sqlite or postgresql)"
    )


def _require_psycopg() -> None:
    """The PostgreSQL driver is an extra (`signoff[postgres]`): the base install, which
    serves SQLite, runs without it, so only a PostgreSQL URL asks for it."""
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "database_url",
            "a PostgreSQL URL needs the psycopg driver, which is not installed: "
            "install signoff[postgres] (pip install 'signoff[postgres]')",
        )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL or an in-memory SQLite.

    Raises ConfigError for an unusable URL (see `async_url`).
    """
    target = async_url(url)
    database = target.database
    if target.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or target.query.get("mode") == "memory":
        return None
    return Path(database)


def load_stored_json(text: str | bytes) -> Any:
    """json.loads for stored columns, also for values stored before inputs were limited to
    32 levels (an accepted value may never make a read fail)."""
    return tolerating_depth(lambda: json.loads(text))


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url` (see `async_url`), set up for Signoff's locking scheme.

    Creating it does not connect. Raises ConfigError for an unusable URL.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(
            target,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            json_deserializer=load_stored_json,
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in target.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    # pre_ping: a PostgreSQL restart must cost one failed checkout, not one failed request.
    return create_async_engine(
        target,
        pool_pre_ping=True,
        connect_args=connect_args,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        json_deserializer=load_stored_json,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not issue its own (deferred) BEGIN; `_on_begin` does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL makes NORMAL crash-safe; only a power loss can drop the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "do_connect")
    def _check_directory(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
        # A failed aiosqlite connect leaves its worker thread to finish after the caller has
        # its exception, and that thread fails if the event loop has closed by then (as when
        # `signoff db upgrade` exits). Catching the usual cause, a missing directory, before
        # aiosqlite starts avoids the stray thread error and names the directory.
        database = str(cparams.get("database", cargs[0] if cargs else ""))
        if database and database != ":memory:" and not cparams.get("uri"):
            directory = os.path.dirname(os.path.abspath(database))
            if not os.path.isdir(directory):
                raise dialect.loaded_dbapi.OperationalError(
                    f"unable to open database file: directory {directory} does not exist"
                )

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock (SQLite
        # answers SQLITE_BUSY at once to avoid deadlock); IMMEDIATE queues at BEGIN instead.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class SqlRepository:
    """Implements `bot.core.ports.Repository` on SQLite or PostgreSQL.

    Build it with `SqlRepository.connect(url)` (no I/O happens until the first call) and
    release it with `close()`. The schema must exist: run `storage.upgrade` first, or use
    `storage.open_repository(url, migrate=True)`. Every method raises `StorageError` when
    the database cannot be reached or refuses the operation.
    """

    def __init__(self, engine: AsyncEngine, *, audit_key: AuditKey | None = None) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{_READ_ONLY: True})
        self._postgres = engine.dialect.name == "postgresql"
        self._statements = DialectStatements(self._postgres)
        # SQLite: this process's writers take turns here before BEGIN IMMEDIATE. Waiting
        # for SQLite's lock instead means its busy handler's sleeps (up to 100 ms each)
        # between retries, so a released lock sat idle while 30 writers slept. The SQLite
        # lock still orders writes against other processes (the CLI).
        self._write_turn = None if self._postgres else asyncio.Lock()
        self._batcher = ApplyBatcher(self._apply_one, self._apply_many)
        self._where = engine.url.render_as_string(hide_password=True)
        # Links new audit events with HMAC under this key (None: unkeyed, as before keys).
        self.audit_key = audit_key

    @classmethod
    def connect(cls, url: str, *, audit_key: AuditKey | None = None) -> SqlRepository:
        """A repository for a user's database URL (see `async_url`); does not connect yet.

        Raises ConfigError when the URL is unusable.
        """
        return cls(create_engine(url), audit_key=audit_key)

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for migrations and tests)."""
        return self._engine

    # -- transactions -------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._turn():
            try:
                async with self._engine.begin() as conn:
                    yield conn
            except sa_exc.SQLAlchemyError as exc:
                raise self._storage_error(exc) from exc

    def _turn(self) -> AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else nullcontext()

    @asynccontextmanager
    async def _read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction; `snapshot` makes several SELECTs agree on PostgreSQL too."""
        try:
            async with self._reader.begin() as conn:
                if snapshot and self._postgres:
                    await conn.execute(
                        text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    )
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: sa_exc.SQLAlchemyError) -> StorageError:
        # str(exc) would carry the SQL and its parameters; the driver's own first line is
        # what an operator needs, and the URL is rendered without its password.
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        lines = str(cause).strip().splitlines()
        detail = lines[0] if lines else type(cause).__name__
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return StorageError(f"cannot use the database {self._where}: {detail}")
        return StorageError(f"the database {self._where} refused the operation: {detail}")

    # -- writes ---------------------------------------------------------------------------

    async def apply(self, change: Change) -> None:
        """Write a request change with its votes, moves, outbox rows and audit events atomically.

        The request's `votes` and `history` are stored as given: rows beyond those already
        stored are appended (both only ever grow), which covers `new_votes`/`new_moves`.
        Raises VersionConflict if the stored version differs from `change.expected_version`
        (or the request id exists on insert), IdempotencyRace if the idempotency key is taken.
        Changes applied concurrently may share one transaction (see `storage._batch`).
        """
        await self._batcher.apply(change)

    async def apply_many(self, changes: Sequence[Change]) -> Sequence[Exception | None]:
        """Write `changes` in one transaction (rows of one table in one statement, see
        `_write_changes`); if any is refused, each is written alone and its own outcome
        returned. A failed COMMIT is raised, not redone (it may have landed)."""
        if not changes:
            return []
        try:
            await self._apply_many(changes)
        except BatchRefused:
            outcomes: list[Exception | None] = []
            for change in changes:
                try:
                    await self._apply_one(change)
                except (VersionConflict, IdempotencyRace, StandingExhausted) as exc:
                    outcomes.append(exc)
                else:
                    outcomes.append(None)
            return outcomes
        return [None] * len(changes)

    async def _apply_one(self, change: Change) -> None:
        async with self._write() as conn:
            await self._write_changes(conn, (change,))

    async def _apply_many(self, changes: Sequence[Change]) -> None:
        written = False
        try:
            async with self._write() as conn:
                await self._write_changes(conn, changes)
                written = True
        except Exception as exc:
            if written:  # the COMMIT failed: it may have landed, so nothing is redone
                raise
            raise BatchRefused(str(exc)) from exc

    async def _write_changes(self, conn: AsyncConnection, changes: Sequence[Change]) -> None:
        """Write `changes` in order; rows of one table from several changes go in one
        statement (a new request's votes and moves, outbox rows, cards), and the audit
        events of all of them last, in the changes' order (see `_append_audit`)."""
        created = [
            c.request for c in changes if c.request is not None and c.expected_version is None
        ]
        if created:
            rows = [{**_request_values(r), "version": 1} for r in created]
            inserted = (await conn.execute(self._statements.insert_request, rows)).all()
            if len(inserted) != len(rows):
                raise VersionConflict("a request with one of these ids exists")
        votes: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        for change in changes:
            request = change.request
            if request is not None:
                stored_votes = stored_moves = 0
                if change.expected_version is not None:
                    stored_votes, stored_moves = await self._update_request(
                        conn, request, change.expected_version
                    )
                votes += _vote_rows(request, stored_votes)
                moves += _move_rows(request, stored_moves)
            if change.idempotency is not None:
                await self._insert_idempotency(conn, change.idempotency)
            if change.agent_state is not None:
                await self._upsert_agent_state(conn, change.agent_state)
            if change.standing_use is not None:
                await _learning.use_standing(conn, change.standing_use)
            outbox += (_outbox_values(m) for m in change.outbox)
            cards += (_card_values(c) for c in change.cards)
        for statement, rows in (
            (INSERT_VOTES, votes),
            (INSERT_MOVES, moves),
            (INSERT_OUTBOX, outbox),
            (INSERT_CARDS, cards),
        ):
            if rows:
                await conn.execute(statement, rows)
        await _append_audit(
            conn, [event for change in changes for event in change.audit], self.audit_key
        )

    async def _update_request(
        self, conn: AsyncConnection, request: ApprovalRequest, expected: int
    ) -> tuple[int, int]:
        """Version-checked UPDATE; returns how many votes and moves are stored already."""
        values = _request_values(request)
        del values["id"]
        values.update(version=expected + 1, match_id=request.id, match_version=expected)
        updated = await conn.execute(UPDATE_REQUEST, values)
        if updated.rowcount != 1:
            raise VersionConflict(f"request {request.id} changed meanwhile")
        # The row lock taken by the UPDATE keeps these counts stable until commit.
        counts = (await conn.execute(CHILD_COUNTS, {"child_of": request.id})).one()
        return int(counts[0]), int(counts[1])

    async def _insert_idempotency(self, conn: AsyncConnection, record: IdempotencyRecord) -> None:
        inserted = await conn.execute(
            self._statements.insert_idempotency,
            {
                "agent_id": record.agent_id,
                "key": record.key,
                "body_sha256": record.body_sha256,
                "request_id": record.request_id,
                "response": dict(record.response),
                "created_at": record.created_at,
            },
        )
        if inserted.first() is None:
            raise IdempotencyRace(f"idempotency key {record.key!r} already used")

    async def _upsert_agent_state(self, conn: AsyncConnection, state: AgentState) -> None:
        await conn.execute(
            _upsert(
                conn,
                AgentStateRow,
                {
                    "agent_id": state.agent_id,
                    "stopped": state.stopped,
                    "reason": state.reason,
                    "actor": state.by,
                    "at": state.at,
                },
                key=("agent_id",),
            )
        )

    async def claim_outbox(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        kinds: Sequence[OutboxKind] | None = None,
        busy: Sequence[str] = (),
    ) -> Sequence[OutboxMessage]:
        """Lease up to `limit` due messages to `owner` (expired leases of others count as due).

        Due means pending, `next_attempt_at <= now` and no lease or an expired one, oldest
        first. PostgreSQL skips rows another claimer holds locked; SQLite serialises claims.
        """
        expires = now + lease
        if limit <= 0:
            return []
        params = {
            "due_at": now,
            "claim_limit": limit,
            "owner": owner,
            "claimer": owner,
            "expires": expires,
            "kinds": [k.value for k in (kinds if kinds is not None else OutboxKind)],
            "busy": list(busy),
        }
        async with self._write() as conn:
            claimed = await conn.execute(CLAIM_OUTBOX, params)
            messages = [_outbox(row) for row in claimed.mappings()]
        # RETURNING comes in no particular order; the claim's order is the sending order.
        return sorted(messages, key=lambda m: (m.next_attempt_at, m.id))

    async def finish_outbox(self, message_id: str, owner: str, result: OutboxResult) -> bool:
        """Record an attempt's result; False if the lease was lost (another owner took it).

        The card (if any) and the audit events are written in the same transaction, and
        only when the lease was still `owner`'s.
        """
        values: dict[str, Any] = {
            "status": result.status.value,
            "attempts": OutboxRow.attempts + int(result.counted),
            "last_error": result.error,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if result.next_attempt_at is not None:
            values["next_attempt_at"] = result.next_attempt_at
        async with self._write() as conn:
            updated = await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.lease_owner == owner)
                .values(**values)
            )
            if updated.rowcount != 1:
                return False
            if result.card is not None:
                await conn.execute(INSERT_CARDS, [_card_values(result.card)])
            if result.batch_ref is not None:
                batch_id, ref = result.batch_ref
                # Only the ref: a planner may rewrite the members meanwhile (version check).
                await conn.execute(
                    update(BatchCardRow).where(BatchCardRow.id == batch_id).values(ref=dict(ref))
                )
            await _append_audit(conn, result.audit, self.audit_key)
        return True

    async def open_batch(self, card: BatchCard, outbox: Sequence[OutboxMessage] = ()) -> bool:
        """Insert an open batch card unless its group has one (partial unique index).

        ON CONFLICT DO NOTHING waits for a concurrent insert of the same group to commit and
        then inserts nothing, so the loser writes no outbox row either.
        """
        async with self._write() as conn:
            inserted = await conn.execute(
                _insert_ignoring_duplicates(conn, BatchCardRow, _batch_values(card, 1))
            )
            if inserted.first() is None:
                return False
            if outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return True

    async def update_batch(
        self, card: BatchCard, expected_version: int, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        values = {
            "members": list(card.members),
            "total": card.total,
            "status": card.status.value,
            "updated_at": card.updated_at,
            "version": expected_version + 1,
        }
        async with self._write() as conn:
            updated = await conn.execute(
                update(BatchCardRow)
                .where(
                    BatchCardRow.id == card.id,
                    BatchCardRow.version == expected_version,
                    BatchCardRow.status == BatchStatus.OPEN.value,
                )
                .values(**values)
            )
            if updated.rowcount != 1:
                return False
            if outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return True

    async def batch(self, batch_id: str) -> BatchCard | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(BatchCardRow.__table__).where(BatchCardRow.id == batch_id)
            )
            row = found.mappings().one_or_none()
        return None if row is None else _batch(row)

    async def open_batches(self) -> Sequence[BatchCard]:
        async with self._read() as conn:
            found = await conn.execute(
                select(BatchCardRow.__table__)
                .where(BatchCardRow.status == BatchStatus.OPEN.value)
                .order_by(BatchCardRow.created_at, BatchCardRow.id)
            )
            return [_batch(row) for row in found.mappings()]

    async def release_outbox(self, message_ids: Sequence[str], owner: str) -> int:
        if not message_ids:
            return 0
        async with self._write() as conn:
            released = await conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(message_ids)),
                    OutboxRow.lease_owner == owner,
                    OutboxRow.status == OutboxStatus.PENDING.value,
                )
                .values(lease_owner=None, lease_expires_at=None)
                .returning(OutboxRow.id)
            )
            return len(released.all())

    async def renew_outbox(
        self, message_ids: Sequence[str], owner: str, expires_at: datetime
    ) -> Sequence[str]:
        if not message_ids:
            return []
        async with self._write() as conn:
            renewed = await conn.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(message_ids)),
                    OutboxRow.lease_owner == owner,
                    OutboxRow.status == OutboxStatus.PENDING.value,
                )
                .values(lease_expires_at=expires_at)
                .returning(OutboxRow.id)
            )
            return [row[0] for row in renewed.all()]

    async def requeue_outbox(
        self, message_id: str, now: datetime, audit: AuditEvent
    ) -> OutboxMessage | None:
        """Put a dead message back in line with its attempts reset; None if it is not dead."""
        async with self._write() as conn:
            found = await conn.execute(
                select(OutboxRow.__table__)
                .where(OutboxRow.id == message_id, OutboxRow.status == OutboxStatus.DEAD.value)
                .with_for_update()
            )
            row = found.mappings().one_or_none()
            if row is None:
                return None
            await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(
                    status=OutboxStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            await _append_audit(conn, (audit,), self.audit_key)
        return dataclasses.replace(
            _outbox(row),
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    async def set_agent_key(self, agent_id: str, key_sha256: str, now: datetime) -> None:
        """Make this the agent's only stored key; earlier stored keys stop working.

        Earlier keys are kept with `revoked_at` set (for the record), not deleted. A key
        stored for another agent moves to this one, as in the in-memory reference.
        """
        async with self._write() as conn:
            await conn.execute(
                update(ApiKeyRow)
                .where(
                    ApiKeyRow.agent_id == agent_id,
                    ApiKeyRow.revoked_at.is_(None),
                    ApiKeyRow.key_sha256 != key_sha256,
                )
                .values(revoked_at=now)
            )
            await conn.execute(
                _upsert(
                    conn,
                    ApiKeyRow,
                    {
                        "agent_id": agent_id,
                        "key_sha256": key_sha256,
                        "created_at": now,
                        "revoked_at": None,
                    },
                    key=("key_sha256",),
                    keep=("created_at",),
                )
            )

    # -- reads ----------------------------------------------------------------------------

    async def get(self, request_id: str) -> ApprovalRequest | None:
        """The whole aggregate (request, votes and tier moves in order) with its version."""
        async with self._read() as conn:
            rows = (await conn.execute(GET_REQUEST, {"request_id": request_id})).mappings().all()
        if not rows:
            return None
        votes: list[Vote] = []
        moves: list[TierMove] = []
        for row in rows:
            if row["child_kind"] == "vote":
                votes.append(
                    Vote(
                        reviewer=row["child_1"],
                        name=row["child_2"],
                        verdict=Verdict(row["child_3"]),
                        rationale=row["child_4"],
                        at=row["child_at"],
                        channel=row["child_5"],
                        action_sha256=row["child_6"],
                        person=row["child_7"] or "",
                        response=row["child_8"],
                    )
                )
            elif row["child_kind"] == "move":
                moves.append(
                    TierMove(row["child_1"], row["child_2"], row["child_at"], row["child_3"])
                )
        return _request(rows[0], votes, moves)

    async def get_many(self, request_ids: Sequence[str]) -> Sequence[ApprovalRequest]:
        """The requests of `request_ids` that exist, in that order, read in one snapshot."""
        if not request_ids:
            return []
        query = select(RequestRow.__table__).where(RequestRow.id.in_(list(request_ids)))
        async with self._read(snapshot=True) as conn:
            rows = {r["id"]: r for r in (await conn.execute(query)).mappings().all()}
            votes, moves = await _children(conn, list(rows))
        return [
            _request(rows[i], votes.get(i, ()), moves.get(i, ())) for i in request_ids if i in rows
        ]

    async def list_requests(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        """Requests ordered by id (creation order, or its reverse); `cursor` is the last id
        of the previous page."""
        limit = max(limit, 0)
        query = select(RequestRow.__table__)
        if agent_id is not None:
            query = query.where(RequestRow.agent_id == agent_id)
        if status is not None:
            query = query.where(RequestRow.status == status)
        if cursor is not None:
            query = query.where(RequestRow.id < cursor if newest_first else RequestRow.id > cursor)
        # One row past the page tells whether another page follows.
        order = RequestRow.id.desc() if newest_first else RequestRow.id
        query = query.order_by(order).limit(limit + 1)
        async with self._read(snapshot=True) as conn:
            rows = (await conn.execute(query)).mappings().all()
            page = rows[:limit]
            votes, moves = await _children(conn, [r["id"] for r in page])
        items = tuple(_request(r, votes.get(r["id"], ()), moves.get(r["id"], ())) for r in page)
        more = len(rows) > limit
        return Page(items, items[-1].id if more and items else None)

    async def list_awaiting(self, limit: int = 500) -> Sequence[ApprovalRequest]:
        """Pending requests and open reviews, earliest deadline first (no deadline last)."""
        query = (
            select(RequestRow.__table__)
            .where(or_(RequestRow.status == "pending", RequestRow.review_status == "open"))
            .order_by(RequestRow.deadline_at.is_(None), RequestRow.deadline_at, RequestRow.id)
            .limit(max(limit, 0))
        )
        async with self._read(snapshot=True) as conn:
            rows = (await conn.execute(query)).mappings().all()
            votes, moves = await _children(conn, [r["id"] for r in rows])
        return [_request(r, votes.get(r["id"], ()), moves.get(r["id"], ())) for r in rows]

    async def find_idempotency(self, agent_id: str, key: str) -> IdempotencyRecord | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(IdempotencyRow.__table__).where(
                    IdempotencyRow.agent_id == agent_id, IdempotencyRow.key == key
                )
            )
            row = found.mappings().one_or_none()
        if row is None:
            return None
        return IdempotencyRecord(
            agent_id=row["agent_id"],
            key=row["key"],
            body_sha256=row["body_sha256"],
            request_id=row["request_id"],
            response=row["response"],
            created_at=row["created_at"],
        )

    async def due_for_sla(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of pending requests whose tier deadline has passed, earliest deadline first.

        Served by the partial index on `deadline_at WHERE status = 'pending'`.
        """
        return await self._due(RequestRow.deadline_at, now, limit)

    async def due_for_reminder(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of pending requests whose reminder time has passed, earliest first."""
        return await self._due(RequestRow.remind_at, now, limit)

    async def _due(
        self, column: InstrumentedAttribute[datetime | None], now: datetime, limit: int
    ) -> Sequence[str]:
        async with self._read() as conn:
            found = await conn.execute(
                select(RequestRow.id)
                .where(self._pending_hint(), column <= now)
                .order_by(column, RequestRow.id)
                .limit(max(limit, 0))
            )
            return list(found.scalars())

    def _pending_hint(self) -> ColumnElement[bool]:
        pending = RequestRow.status == _PENDING
        if self._postgres:
            return pending
        # Without ANALYZE statistics SQLite rates `status = 'pending'` on ix_requests_status_id
        # as more selective than the partial index's time range, and would read and sort every
        # pending row. Declaring the equality barely selective steers it to the partial index,
        # whose predicate it still matches through likelihood().
        return func.likelihood(pending, literal_column("0.9375"))

    async def get_outbox(self, message_id: str) -> OutboxMessage | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(OutboxRow.__table__).where(OutboxRow.id == message_id)
            )
            row = found.mappings().one_or_none()
        return None if row is None else _outbox(row)

    async def list_outbox(
        self,
        *,
        kind: OutboxKind | None = None,
        status: OutboxStatus | None = None,
        agent_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxMessage]:
        """Messages ordered by id; `agent_id` matches the payload's `agent_id`."""
        query = select(OutboxRow.__table__)
        if kind is not None:
            query = query.where(OutboxRow.kind == kind.value)
        if status is not None:
            query = query.where(OutboxRow.status == status.value)
        if agent_id is not None:
            query = query.where(OutboxRow.agent_id == agent_id)
        async with self._read() as conn:
            found = await conn.execute(query.order_by(OutboxRow.id).limit(max(limit, 0)))
            return [_outbox(row) for row in found.mappings()]

    async def cards(self, request_id: str) -> Sequence[CardRef]:
        """Every posted copy of the request's card, in the order they were posted."""
        async with self._read() as conn:
            found = await conn.execute(
                select(CardRow.__table__)
                .where(CardRow.request_id == request_id)
                .order_by(CardRow.id)
            )
            return [
                CardRef(
                    request_id=row["request_id"],
                    channel=row["channel"],
                    tier=row["tier"],
                    ref=row["ref"],
                    posted_at=row["posted_at"],
                )
                for row in found.mappings()
            ]

    async def agent_state(self, agent_id: str) -> AgentState | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(AgentStateRow.__table__).where(AgentStateRow.agent_id == agent_id)
            )
            row = found.mappings().one_or_none()
        if row is None:
            return None
        return AgentState(row["agent_id"], row["stopped"], row["reason"], row["actor"], row["at"])

    async def agent_for_key(self, key_sha256: str) -> str | None:
        """The agent a stored (hashed) API key belongs to, unless the key was revoked."""
        async with self._read() as conn:
            found = await conn.execute(
                select(ApiKeyRow.agent_id).where(
                    ApiKeyRow.key_sha256 == key_sha256, ApiKeyRow.revoked_at.is_(None)
                )
            )
            return found.scalar_one_or_none()

    async def audit_records(
        self,
        *,
        since: datetime | None = None,
        request_id: str | None = None,
        risk: str | None = None,
        actor: str | None = None,
        last: int | None = None,
    ) -> Sequence[AuditRecord]:
        """Audit rows in chain order, filtered; `last` keeps the last N matching rows."""
        query = select(AuditEventRow.__table__)
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        if request_id is not None:
            query = query.where(AuditEventRow.request_id == request_id)
        if risk is not None:
            query = query.where(AuditEventRow.risk == risk)
        if actor is not None:
            query = query.where(AuditEventRow.actor == actor)
        if last:
            query = query.order_by(AuditEventRow.seq.desc()).limit(last)
        else:
            query = query.order_by(AuditEventRow.seq)
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        records = [_audit_record(row) for row in rows]
        return records[::-1] if last else records

    async def audit_head(self) -> tuple[int, str] | None:
        """The chain's tail as the last append recorded it; None before the first event."""
        async with self._read() as conn:
            found = await conn.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _AUDIT_HEAD_ID)
            )
            head = found.one_or_none()
        if head is None or int(head.seq) == 0:
            return None
        return int(head.seq), str(head.hash)

    async def audit_anchor(self) -> AuditAnchor | None:
        """The `audit_head` row with the key it was linked with; None when the row is gone."""
        async with self._read() as conn:
            found = await conn.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash, AuditHeadRow.key_id).where(
                    AuditHeadRow.id == _AUDIT_HEAD_ID
                )
            )
            head = found.one_or_none()
        return None if head is None else AuditAnchor(int(head.seq), str(head.hash), head.key_id)

    async def ensure_audit_key(self, now: datetime) -> bool:
        """Record the move to `audit_key` now (an `audit_keyed` event) unless the chain's last
        link already uses it; True when an event was written."""
        if self.audit_key is None:
            return False
        async with self._write() as conn:
            return await _append_audit(conn, (), self.audit_key, switch_at=now)

    async def claim_audit_checkpoint(self, slot: int) -> bool:
        """Take checkpoint interval `slot` for this replica; False when another took it."""
        async with self._write() as conn:
            taken = await conn.execute(
                update(AuditHeadRow)
                .where(
                    AuditHeadRow.id == _AUDIT_HEAD_ID,
                    or_(
                        AuditHeadRow.checkpoint_slot.is_(None), AuditHeadRow.checkpoint_slot != slot
                    ),
                )
                .values(checkpoint_slot=slot)
                .returning(AuditHeadRow.id)
            )
            return taken.one_or_none() is not None

    async def pending_by_tier(self) -> Mapping[str, int]:
        """How many pending requests sit at each tier."""
        async with self._read() as conn:
            found = await conn.execute(
                select(RequestRow.tier, func.count())
                .where(RequestRow.status == _PENDING, RequestRow.tier.is_not(None))
                .group_by(RequestRow.tier)
            )
            return {str(tier): int(count) for tier, count in found}

    async def login_failures(self, login: str, address: str) -> LoginFailures:
        async with self._read() as conn:
            found = await conn.execute(
                select(LoginFailureRow.recent, LoginFailureRow.locked_until).where(
                    LoginFailureRow.login == login, LoginFailureRow.address == address
                )
            )
            row = found.one_or_none()
        return _login_failures(row.recent, row.locked_until) if row else LoginFailures()

    async def record_login_failure(
        self, login: str, address: str, now: datetime, *, max_failures: int, window: timedelta
    ) -> LoginFailures:
        key = (LoginFailureRow.login == login, LoginFailureRow.address == address)
        async with self._write() as conn:
            # Create the row if need be, then lock it: concurrent failures on several
            # replicas count one after the other instead of overwriting each other.
            await conn.execute(
                _insert_ignoring_duplicates(
                    conn,
                    LoginFailureRow,
                    {
                        "login": login,
                        "address": address,
                        "recent": [],
                        "locked_until": None,
                        "updated_at": now,
                    },
                )
            )
            found = await conn.execute(
                select(LoginFailureRow.recent, LoginFailureRow.locked_until)
                .where(*key)
                .with_for_update()
            )
            row = found.one()
            state = _login_failures(row.recent, row.locked_until).after_failure(
                now, max_failures, window
            )
            await conn.execute(
                update(LoginFailureRow)
                .where(*key)
                .values(
                    recent=[isoformat(t) for t in state.recent],
                    locked_until=state.locked_until,
                    updated_at=now,
                )
            )
            # Names nobody tried for a day (typos, guesses) are forgotten.
            await conn.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.updated_at < now - max(window, timedelta(days=1))
                )
            )
        return state

    async def forget_login_failures(self, login: str, address: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.login == login, LoginFailureRow.address == address
                )
            )

    async def create_web_session(self, session: WebSession) -> None:
        async with self._write() as conn:
            await conn.execute(_web_sessions.forget_ended(session.created_at))
            await conn.execute(insert(WebSessionRow).values(**_web_sessions.values(session)))

    async def web_session(self, token_sha256: str) -> WebSession | None:
        async with self._read() as conn:
            row = (await conn.execute(_web_sessions.by_token(token_sha256))).mappings().first()
        return None if row is None else _web_sessions.from_row(row)

    async def web_sessions(self, now: datetime) -> Sequence[WebSession]:
        async with self._read() as conn:
            rows = (await conn.execute(_web_sessions.active(now))).mappings().all()
        return [_web_sessions.from_row(row) for row in rows]

    async def revoke_web_session(self, session_id: str, now: datetime, by: str) -> bool:
        async with self._write() as conn:
            found = await conn.execute(_web_sessions.revoke(session_id, now, by))
            return found.first() is not None

    async def add_login_token(
        self, digest: str, login: str, expires_at: datetime, now: datetime
    ) -> None:
        async with self._write() as conn:
            # Tokens are issued rarely, so issuing one is when the expired ones go.
            await conn.execute(delete(LoginTokenRow).where(LoginTokenRow.expires_at <= now))
            await conn.execute(
                insert(LoginTokenRow).values(digest=digest, login=login, expires_at=expires_at)
            )

    async def peek_login_token(self, digest: str, now: datetime) -> str | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(LoginTokenRow.login).where(
                    LoginTokenRow.digest == digest, LoginTokenRow.expires_at > now
                )
            )
            return found.scalar_one_or_none()

    async def redeem_login_token(self, digest: str, now: datetime) -> str | None:
        async with self._write() as conn:
            # DELETE ... RETURNING: of two concurrent redeems only one deletes the row.
            found = await conn.execute(
                delete(LoginTokenRow)
                .where(LoginTokenRow.digest == digest)
                .returning(LoginTokenRow.login, LoginTokenRow.expires_at)
            )
            row = found.one_or_none()
        if row is None or as_utc(row.expires_at) <= now:
            return None
        return str(row.login)

    async def flip_alert(self, alert: Alert, outbox: Sequence[OutboxMessage] = ()) -> bool:
        key = (AlertRow.code == alert.code, AlertRow.subject == alert.subject)
        seen: dict[str, Any] = {
            "message": alert.message,
            "figures": dict(alert.figures),
            "updated_at": alert.updated_at,
        }
        async with self._write() as conn:
            # Each branch is one conditional statement: under concurrent evaluation the row
            # lock makes a second replica's WHERE fail after the first commits.
            if alert.active:
                flipped = (
                    await conn.execute(
                        _insert_ignoring_duplicates(conn, AlertRow, _alert_values(alert))
                    )
                ).first() is not None or (
                    await conn.execute(
                        update(AlertRow)
                        .where(*key, AlertRow.active.is_(False))
                        .values(_alert_values(alert))
                        .returning(literal_column("1"))
                    )
                ).first() is not None
                if not flipped:
                    await conn.execute(
                        update(AlertRow).where(*key, AlertRow.active.is_(True)).values(seen)
                    )
            else:
                flipped = (
                    await conn.execute(
                        update(AlertRow)
                        .where(*key, AlertRow.active.is_(True))
                        .values(**seen, active=False, cleared_at=alert.updated_at)
                        .returning(literal_column("1"))
                    )
                ).first() is not None
            if flipped and outbox:
                await conn.execute(INSERT_OUTBOX, [_outbox_values(m) for m in outbox])
            return flipped

    async def alerts(self, *, active_only: bool = False) -> Sequence[Alert]:
        query = select(AlertRow).order_by(
            AlertRow.raised_at.desc(), AlertRow.code.desc(), AlertRow.subject.desc()
        )
        if active_only:
            query = query.where(AlertRow.active.is_(True))
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Alert(
                code=row["code"],
                subject=row["subject"],
                active=row["active"],
                message=row["message"],
                figures=row["figures"],
                raised_at=row["raised_at"],
                updated_at=row["updated_at"],
                cleared_at=row["cleared_at"],
            )
            for row in rows
        ]

    async def count_outbox(self, kind: OutboxKind, status: OutboxStatus) -> int:
        async with self._read() as conn:
            return await _count(
                conn, OutboxRow.kind == kind.value, OutboxRow.status == status.value
            )

    async def add_standing(self, grant: StandingApproval, audit: Sequence[AuditEvent]) -> None:
        async with self._write() as conn:
            await conn.execute(insert(_learning.GRANTS).values(**_learning.grant_values(grant)))
            await _append_audit(conn, audit, self.audit_key)

    async def standing_approval(self, grant_id: str) -> StandingApproval | None:
        async with self._read() as conn:
            found = await conn.execute(
                select(_learning.GRANTS).where(_learning.GRANTS.id == grant_id)
            )
            row = found.mappings().first()
        return None if row is None else _learning.grant(row)

    async def standing_approvals(
        self,
        *,
        agent_id: str | None = None,
        kind: str | None = None,
        active_at: datetime | None = None,
    ) -> Sequence[StandingApproval]:
        async with self._read() as conn:
            return await _learning.grants(conn, agent_id=agent_id, kind=kind, active_at=active_at)

    async def revoke_standing(
        self, grant_id: str, by: str, now: datetime, audit: AuditEvent
    ) -> StandingApproval | None:
        async with self._write() as conn:
            revoked = await _learning.revoke(conn, grant_id, by, now)
            if revoked is not None:
                await _append_audit(conn, (audit,), self.audit_key)
        return revoked

    async def add_model(self, model: PredictionModel, audit: AuditEvent) -> PredictionModel:
        async with self._write() as conn:
            version = await _learning.next_version(conn)
            stored = dataclasses.replace(model, version=version, active=False, activated_at=None)
            await conn.execute(insert(_learning.MODELS).values(**_learning.model_values(stored)))
            event = dataclasses.replace(audit, data={**audit.data, "version": version})
            await _append_audit(conn, (event,), self.audit_key)
        return stored

    async def prediction_models(self) -> Sequence[PredictionModel]:
        async with self._read() as conn:
            return await _learning.models(conn)

    async def activate_model(self, version: int | None, now: datetime, audit: AuditEvent) -> bool:
        async with self._write() as conn:
            if version is not None:
                found = await conn.execute(
                    select(_learning.MODELS.version).where(_learning.MODELS.version == version)
                )
                if found.first() is None:
                    return False
            await _learning.activate(conn, version, now)
            await _append_audit(conn, (audit,), self.audit_key)
        return True

    async def active_model(self) -> PredictionModel | None:
        async with self._read() as conn:
            found = await _learning.models(conn, active_only=True)
        return found[0] if found else None

    async def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection; the repository is unusable afterwards."""
        await self._batcher.close()
        await self._engine.dispose()


# -- statement helpers ------------------------------------------------------------------


def _dialect_insert(conn: AsyncConnection, model: type[Any]) -> Any:
    # Both dialects spell upserts the same way; only the construct's module differs.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _insert_ignoring_duplicates(
    conn: AsyncConnection, model: type[Any], values: Mapping[str, Any]
) -> Executable:
    """INSERT that returns no row on a key clash instead of aborting the transaction.

    RETURNING, not rowcount, tells the outcome: psycopg reports rowcount -1 for INSERTs
    compiled by SQLAlchemy. (RETURNING needs SQLite 3.35 or later.)
    """
    stmt = _dialect_insert(conn, model).values(**values).on_conflict_do_nothing()
    returning: Executable = stmt.returning(literal_column("1"))
    return returning


def _upsert(
    conn: AsyncConnection,
    model: type[Any],
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    keep: Sequence[str] = (),
) -> Executable:
    stmt = _dialect_insert(conn, model).values(**values)
    changed = {name: stmt.excluded[name] for name in values if name not in (*key, *keep)}
    upsert: Executable = stmt.on_conflict_do_update(index_elements=list(key), set_=changed)
    return upsert


async def _count(conn: AsyncConnection, *where: Any) -> int:
    found = await conn.execute(select(func.count()).where(*where))
    return int(found.scalar_one())


async def _append_audit(
    conn: AsyncConnection,
    events: Sequence[AuditEvent],
    key: AuditKey | None,
    *,
    switch_at: datetime | None = None,
) -> bool:
    """Link `events` to the chain. Called last in a transaction: the head lock serialises.

    `switch_at` writes the `audit_keyed` event even without other events. True when any
    event was written."""
    if not events and switch_at is None:
        return False
    head = (await conn.execute(LOCK_AUDIT_HEAD)).one_or_none()
    if head is None:
        raise StorageError("the audit chain has no head row; run `signoff db upgrade`")
    anchor = AuditAnchor(int(head.seq), str(head.hash), head.key_id)
    try:
        records, moved = link_events(anchor, events, key, switch_at=switch_at)
    except UnkeyedAppend as exc:
        raise StorageError(str(exc)) from exc
    if not records:
        return False
    seq, prev = moved.seq, moved.hash
    rows = [
        {
            "seq": record.seq,
            "event": record.event.event,
            "at": record.event.at,
            "request_id": record.event.request_id,
            "actor": record.event.actor,
            "channel": record.event.channel,
            "reason": record.event.reason,
            "risk": record.event.risk,
            "data": dict(record.event.data),
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        }
        for record in records
    ]
    if conn.dialect.name == "postgresql":
        await conn.execute(APPEND_AUDIT_POSTGRES, _audit_arrays(rows, seq, prev, moved.key_id))
        return True
    await conn.execute(INSERT_AUDIT, rows)
    await conn.execute(
        MOVE_AUDIT_HEAD, {"head_seq": seq, "head_hash": prev, "head_key_id": moved.key_id}
    )
    return True


def _audit_arrays(
    rows: Sequence[Mapping[str, Any]], seq: int, head: str, key_id: str | None
) -> dict[str, Any]:
    """APPEND_AUDIT_POSTGRES's parameters: one array per column, the JSON as text."""

    def column(name: str) -> list[Any]:
        return [row[name] for row in rows]

    return {
        "head_seq": seq,
        "head_hash": head,
        "head_key_id": key_id,
        "seqs": column("seq"),
        "events": column("event"),
        "ats": [as_utc(row["at"]) for row in rows],
        "request_ids": column("request_id"),
        "actors": column("actor"),
        "channels": column("channel"),
        "reasons": column("reason"),
        "risks": column("risk"),
        # As SQLAlchemy's JSON type would serialise it.
        "datas": [json.dumps(row["data"]) for row in rows],
        "prev_hashes": column("prev_hash"),
        "hashes": column("hash"),
    }


async def _children(
    conn: AsyncConnection, request_ids: Sequence[str]
) -> tuple[dict[str, list[Vote]], dict[str, list[TierMove]]]:
    votes: dict[str, list[Vote]] = {}
    moves: dict[str, list[TierMove]] = {}
    if not request_ids:
        return votes, moves
    found_votes = await conn.execute(
        select(VoteRow.__table__)
        .where(VoteRow.request_id.in_(request_ids))
        .order_by(VoteRow.request_id, VoteRow.seq)
    )
    for row in found_votes.mappings():
        votes.setdefault(row["request_id"], []).append(
            Vote(
                reviewer=row["reviewer"],
                name=row["name"],
                verdict=Verdict(row["verdict"]),
                rationale=row["rationale"],
                at=row["at"],
                channel=row["channel"],
                action_sha256=row["action_sha256"],
                person=row["person"] or "",
                response=row["response"],
            )
        )
    found_moves = await conn.execute(
        select(TierMoveRow.__table__)
        .where(TierMoveRow.request_id.in_(request_ids))
        .order_by(TierMoveRow.request_id, TierMoveRow.seq)
    )
    for row in found_moves.mappings():
        moves.setdefault(row["request_id"], []).append(
            TierMove(row["from_tier"], row["to_tier"], row["at"], row["reason"])
        )
    return votes, moves


# -- row <-> domain ---------------------------------------------------------------------


def _request_values(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "agent_id": r.agent_id,
        "thread_id": r.thread_id,
        "action": r.action.to_json(),
        "modified_action": r.modified_action.to_json() if r.modified_action else None,
        "confidence": r.confidence,
        "status": r.status.value,
        "lane": r.lane.value,
        "risk": r.risk.value,
        "reasons": list(r.reasons),
        "tier": r.tier,
        "approvals_required": r.approvals_required,
        "review": r.review.value,
        "review_status": r.review_status.value if r.review_status else None,
        "amount": r.amount,
        "currency": r.currency,
        "reversible": r.reversible,
        "domain": r.domain,
        "sentiment": r.sentiment,
        "requested_by": r.requested_by,
        "callback_url": r.callback_url,
        "labels": dict(r.labels),
        "context": dict(r.context),
        "outcome": dict(r.outcome) if r.outcome is not None else None,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "decided_at": r.decided_at,
        "deadline_at": r.deadline_at,
        "remind_at": r.remind_at,
        "canary": r.canary,
        "predicted_escalation": r.predicted_escalation,
        "cost": r.cost,
        "reason_texts": [t.to_json() for t in r.reason_texts] or None,
        "question": r.question,
        "response_schema": dict(r.response_schema) if r.response_schema else None,
        "reject_options": list(r.reject_options) or None,
    }


def _login_failures(recent: Sequence[str], locked_until: datetime | None) -> LoginFailures:
    return LoginFailures(tuple(as_utc(datetime.fromisoformat(t)) for t in recent), locked_until)


def _alert_values(alert: Alert) -> dict[str, Any]:
    return {
        "code": alert.code,
        "subject": alert.subject,
        "active": True,
        "message": alert.message,
        "figures": dict(alert.figures),
        "raised_at": alert.raised_at,
        "updated_at": alert.updated_at,
        "cleared_at": None,
    }


def _request(row: RowMapping, votes: Iterable[Vote], moves: Iterable[TierMove]) -> ApprovalRequest:
    return ApprovalRequest(
        id=row["id"],
        agent_id=row["agent_id"],
        action=Action.from_json(row["action"]),
        confidence=row["confidence"],
        status=Status(row["status"]),
        lane=Lane(row["lane"]),
        risk=Risk(row["risk"]),
        reasons=tuple(row["reasons"]),
        tier=row["tier"],
        approvals_required=row["approvals_required"],
        review=ReviewState(row["review"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        thread_id=row["thread_id"],
        amount=row["amount"],
        currency=row["currency"],
        reversible=row["reversible"],
        domain=row["domain"],
        sentiment=row["sentiment"],
        requested_by=row["requested_by"],
        callback_url=row["callback_url"],
        labels=row["labels"],
        context=row["context"],
        review_status=ReviewStatus(row["review_status"]) if row["review_status"] else None,
        decided_at=row["decided_at"],
        deadline_at=row["deadline_at"],
        remind_at=row["remind_at"],
        modified_action=(
            Action.from_json(row["modified_action"]) if row["modified_action"] else None
        ),
        outcome=row["outcome"],
        votes=tuple(votes),
        history=tuple(moves),
        version=row["version"],
        canary=row["canary"],
        predicted_escalation=row["predicted_escalation"],
        cost=row["cost"],
        reason_texts=tuple(ReasonText.from_json(t) for t in row["reason_texts"] or ()),
        question=row["question"],
        response_schema=row["response_schema"],
        reject_options=tuple(row["reject_options"] or ()),
    )


def _vote_rows(request: ApprovalRequest, stored: int) -> list[dict[str, Any]]:
    """Rows for the request's votes beyond the `stored` first ones (votes only grow)."""
    return [
        _vote_values(request.id, seq, vote)
        for seq, vote in enumerate(request.votes[stored:], start=stored + 1)
    ]


def _move_rows(request: ApprovalRequest, stored: int) -> list[dict[str, Any]]:
    """Rows for the request's tier moves beyond the `stored` first ones (moves only grow)."""
    return [
        {
            "request_id": request.id,
            "seq": seq,
            "from_tier": move.from_tier,
            "to_tier": move.to_tier,
            "at": move.at,
            "reason": move.reason,
        }
        for seq, move in enumerate(request.history[stored:], start=stored + 1)
    ]


def _vote_values(request_id: str, seq: int, vote: Vote) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "seq": seq,
        "reviewer": vote.reviewer,
        "name": vote.name,
        "verdict": vote.verdict.value,
        "rationale": vote.rationale,
        "at": vote.at,
        "channel": vote.channel,
        "action_sha256": vote.action_sha256,
        "person": vote.person,
        "response": vote.response,
    }


def _outbox_values(m: OutboxMessage) -> dict[str, Any]:
    agent_id = m.payload.get("agent_id")
    return {
        "id": m.id,
        "kind": m.kind.value,
        "request_id": m.request_id,
        "agent_id": agent_id if isinstance(agent_id, str) else None,
        "payload": dict(m.payload),
        "created_at": m.created_at,
        "next_attempt_at": m.next_attempt_at,
        "attempts": m.attempts,
        "status": m.status.value,
        "last_error": m.last_error,
        "lease_owner": m.lease_owner,
        "lease_expires_at": m.lease_expires_at,
        "destination": destination(m.kind, m.payload, m.request_id),
    }


def _card_values(card: CardRef) -> dict[str, Any]:
    return {
        "request_id": card.request_id,
        "channel": card.channel,
        "tier": card.tier,
        "ref": dict(card.ref),
        "posted_at": card.posted_at,
    }


def _outbox(row: RowMapping) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=OutboxKind(row["kind"]),
        request_id=row["request_id"],
        payload=row["payload"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        attempts=row["attempts"],
        status=OutboxStatus(row["status"]),
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
    )


def _batch_values(card: BatchCard, version: int) -> dict[str, Any]:
    return {
        "id": card.id,
        "tier": card.tier,
        "kind": card.kind,
        "channel": card.channel,
        "target": card.target,
        "status": card.status.value,
        "members": list(card.members),
        "total": card.total,
        "ref": dict(card.ref) if card.ref is not None else None,
        "created_at": card.created_at,
        "updated_at": card.updated_at,
        "version": version,
    }


def _batch(row: RowMapping) -> BatchCard:
    return BatchCard(
        id=row["id"],
        tier=row["tier"],
        kind=row["kind"],
        channel=row["channel"],
        target=row["target"],
        members=tuple(row["members"]),
        total=row["total"],
        status=BatchStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        ref=row["ref"],
        version=row["version"],
    )


def _audit_record(row: RowMapping) -> AuditRecord:
    audit_event = AuditEvent(
        event=row["event"],
        at=row["at"],
        request_id=row["request_id"],
        actor=row["actor"],
        channel=row["channel"],
        reason=row["reason"],
        risk=row["risk"],
        data=row["data"],
    )
    return AuditRecord(row["seq"], audit_event, row["prev_hash"], row["hash"])
