"""The ports the engine talks through: storage, reviewer channels, resume targets, time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.core.audit_chain import AuditAnchor
from bot.core.domain import (
    AgentState,
    Alert,
    ApprovalRequest,
    AuditEvent,
    AuditRecord,
    Ballot,
    BatchCard,
    BatchItemResult,
    CardRef,
    Change,
    IdempotencyRecord,
    LoginFailures,
    OutboxKind,
    OutboxMessage,
    OutboxResult,
    OutboxStatus,
    Page,
    Verdict,
    WebSession,
)
from bot.core.learning import GrantRequest, PredictionModel, StandingApproval
from bot.core.views import BatchView, CardView, QueueView


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Repository(Protocol):
    """Durable state. Every write goes through `apply` (one transaction) or the outbox calls.

    Every method raises `StorageError` when the database cannot be reached.
    """

    async def apply(self, change: Change) -> None:
        """Write a request change with its votes, moves, outbox rows and audit events atomically.

        Raises VersionConflict if the stored version differs from `change.expected_version`
        (or the request id exists on insert), IdempotencyRace if the idempotency key is taken.
        """
        ...

    async def apply_many(self, changes: Sequence[Change]) -> Sequence[Exception | None]:
        """Write many changes in one transaction, each still whole; returns each one's
        outcome in order: None (committed) or the error writing it alone raised
        (VersionConflict, IdempotencyRace, ...).

        When one change is refused the transaction rolls back and each is written alone, so
        a refused change costs the others nothing but time. Raises StorageError when the
        database cannot be reached (nothing, or everything, was written).
        """
        ...

    async def get(self, request_id: str) -> ApprovalRequest | None: ...

    async def get_many(self, request_ids: Sequence[str]) -> Sequence[ApprovalRequest]:
        """The requests of `request_ids` that exist, in that order (one read for many)."""
        ...

    async def list_requests(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> Page:
        """Requests ordered by id (creation order, or newest first); `cursor` is the last id
        of the previous page."""
        ...

    async def list_awaiting(self, limit: int = 500) -> Sequence[ApprovalRequest]:
        """Requests a reviewer can still act on (pending, or review open), by deadline."""
        ...

    async def find_idempotency(self, agent_id: str, key: str) -> IdempotencyRecord | None: ...

    async def due_for_sla(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of pending requests whose tier deadline has passed (uses an index; no full scan)."""
        ...

    async def due_for_reminder(self, now: datetime, limit: int) -> Sequence[str]: ...

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

        Only messages of `kinds` (default: every kind) whose destination
        (`bot.lanes.destination`) is not in `busy`, and never one whose lease `owner`
        holds or held (it may still be running there).
        """
        ...

    async def renew_outbox(
        self, message_ids: Sequence[str], owner: str, expires_at: datetime
    ) -> Sequence[str]:
        """Extend the leases `owner` still holds on pending messages to `expires_at` (a
        delivery still running); returns the ids renewed (a lease taken over is not)."""
        ...

    async def finish_outbox(self, message_id: str, owner: str, result: OutboxResult) -> bool:
        """Record an attempt's result; False if the lease was lost (another owner took it)."""
        ...

    async def get_outbox(self, message_id: str) -> OutboxMessage | None: ...

    async def list_outbox(
        self,
        *,
        kind: OutboxKind | None = None,
        status: OutboxStatus | None = None,
        agent_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxMessage]: ...

    async def release_outbox(self, message_ids: Sequence[str], owner: str) -> int:
        """Give back leases `owner` holds on pending messages it will not start, so any
        worker may claim them at once instead of after the lease runs out; returns how many
        were released (a lease already taken over is left alone)."""
        ...

    async def requeue_outbox(
        self, message_id: str, now: datetime, audit: AuditEvent
    ) -> OutboxMessage | None:
        """Put a dead message back in line with its attempts reset; None if it is not dead."""
        ...

    async def cards(self, request_id: str) -> Sequence[CardRef]: ...

    async def open_batch(self, card: BatchCard, outbox: Sequence[OutboxMessage] = ()) -> bool:
        """Store a new open batch card with its outbox rows in one transaction.

        False (and nothing written) when its group (tier, kind, channel, target) already has
        an open card: of several replicas planning the same group at once, one wins.
        """
        ...

    async def update_batch(
        self, card: BatchCard, expected_version: int, outbox: Sequence[OutboxMessage] = ()
    ) -> bool:
        """Replace an open card's members, total and status (version +1) with its outbox rows.

        False (and nothing written) unless the stored card is open at `expected_version`.
        """
        ...

    async def batch(self, batch_id: str) -> BatchCard | None: ...

    async def open_batches(self) -> Sequence[BatchCard]:
        """Every open batch card, oldest first."""
        ...

    async def agent_state(self, agent_id: str) -> AgentState | None: ...

    async def agent_for_key(self, key_sha256: str) -> str | None:
        """The agent a stored (hashed) API key belongs to, if it is current."""
        ...

    async def set_agent_key(self, agent_id: str, key_sha256: str, now: datetime) -> None:
        """Make this the agent's only stored key; earlier stored keys stop working."""
        ...

    async def audit_records(
        self,
        *,
        since: datetime | None = None,
        request_id: str | None = None,
        risk: str | None = None,
        actor: str | None = None,
        last: int | None = None,
    ) -> Sequence[AuditRecord]:
        """Audit rows in chain order, filtered."""
        ...

    async def audit_head(self) -> tuple[int, str] | None:
        """The seq and hash of the newest audit event as recorded at append time.

        Verification compares the chain's end with it, so removing the newest events shows.
        """
        ...

    async def audit_anchor(self) -> AuditAnchor | None:
        """The recorded head with the key id of the last link; None when it was removed."""
        ...

    async def ensure_audit_key(self, now: datetime) -> bool:
        """Write an `audit_keyed` event unless the chain's last link uses the repository's
        audit key already (or it has none); True when one was written."""
        ...

    async def claim_audit_checkpoint(self, slot: int) -> bool:
        """Take the checkpoint interval `slot`; False when a replica took it already."""
        ...

    async def pending_by_tier(self) -> Mapping[str, int]: ...

    async def login_failures(self, login: str, address: str) -> LoginFailures:
        """The recent failed web sign-ins of a (normalised) login name from one client
        address. Counting per address keeps a stranger elsewhere from locking the name."""
        ...

    async def record_login_failure(
        self, login: str, address: str, now: datetime, *, max_failures: int, window: timedelta
    ) -> LoginFailures:
        """Count a failed sign-in of `login` from `address` atomically (every replica sees
        the same count); returns the new state, locked once `max_failures` fall within
        `window`."""
        ...

    async def forget_login_failures(self, login: str, address: str) -> None:
        """A successful sign-in clears the failures of the name from that address."""
        ...

    async def create_web_session(self, session: WebSession) -> None:
        """Store a new web session; sessions that ended more than a day before
        `session.created_at` are forgotten on the way."""
        ...

    async def web_session(self, token_sha256: str) -> WebSession | None:
        """The session whose secret has this digest, revoked or expired ones included."""
        ...

    async def web_sessions(self, now: datetime) -> Sequence[WebSession]:
        """Sessions neither revoked nor expired at `now`, newest first."""
        ...

    async def revoke_web_session(self, session_id: str, now: datetime, by: str) -> bool:
        """End a session for good; True if it was active (False: unknown, already revoked
        or expired)."""
        ...

    async def add_login_token(
        self, digest: str, login: str, expires_at: datetime, now: datetime
    ) -> None:
        """Keep a one-time sign-in token (by its SHA-256 hex) for `login` until `expires_at`,
        so any replica can redeem it; tokens expired by `now` may be dropped meanwhile.
        Raises StorageError."""
        ...

    async def peek_login_token(self, digest: str, now: datetime) -> str | None:
        """The login an unexpired, unused token signs in as, without using it up."""
        ...

    async def redeem_login_token(self, digest: str, now: datetime) -> str | None:
        """Use the token up, atomically: of concurrent redeems exactly one gets its login;
        None if it was used, expired or never issued."""
        ...

    async def flip_alert(self, alert: Alert, outbox: Sequence[OutboxMessage] = ()) -> bool:
        """Store a warning sign's state; True if this call flipped it (raised or cleared).

        Only a flip writes `outbox` (in the same transaction), so however many replicas
        evaluate the same sign at once, exactly one announces it. A call that does not flip
        refreshes an active alert's message and figures.
        """
        ...

    async def alerts(self, *, active_only: bool = False) -> Sequence[Alert]:
        """Warning signs, newest first."""
        ...

    async def count_outbox(self, kind: OutboxKind, status: OutboxStatus) -> int: ...

    async def add_standing(self, grant: StandingApproval, audit: Sequence[AuditEvent]) -> None:
        """Store a new standing approval with its audit events in one transaction.

        A use is counted through `Change.standing_use` in the transaction of the request it
        approves (`apply` raises StandingExhausted when none is left).
        """
        ...

    async def standing_approval(self, grant_id: str) -> StandingApproval | None: ...

    async def standing_approvals(
        self,
        *,
        agent_id: str | None = None,
        kind: str | None = None,
        active_at: datetime | None = None,
    ) -> Sequence[StandingApproval]:
        """Grants, oldest first; with `active_at`, only those unrevoked, unexpired at that
        time and with a use left."""
        ...

    async def revoke_standing(
        self, grant_id: str, by: str, now: datetime, audit: AuditEvent
    ) -> StandingApproval | None:
        """Revoke a grant and write `audit` with it; None (nothing written) when there is no
        such grant or it was already revoked."""
        ...

    async def add_model(self, model: PredictionModel, audit: AuditEvent) -> PredictionModel:
        """Store a trained model as the next version (its `version` is ignored; `active`
        starts false) with `audit`, whose data gains the version; returns the stored model."""
        ...

    async def prediction_models(self) -> Sequence[PredictionModel]:
        """Every stored model version, newest first."""
        ...

    async def activate_model(self, version: int | None, now: datetime, audit: AuditEvent) -> bool:
        """Make `version` the only active model (None: no model active) and write `audit`;
        False (nothing written) when no model has that version."""
        ...

    async def active_model(self) -> PredictionModel | None: ...

    async def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        ...

    async def close(self) -> None: ...


class Notifier(Protocol):
    """Tells the other replicas on the same database that something changed.

    A notification is a hint: receivers re-read the database, and a lost one costs latency
    (fallback polls, periodic ticks and the stop state's short cache lifetime catch up),
    never correctness. So no method raises because the database is down. Channels used:
    `request` (payload: the request id), `outbox` (payload empty) and `agent` (payload: the
    agent id whose stop state changed). An empty payload delivered on any channel means
    "something may have changed while notifications were lost" (sent after a reconnect).
    """

    def publish(self, channel: str, payload: str) -> None:
        """Queue `payload` for the other replicas subscribed to `channel`; returns at once."""
        ...

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` on this event loop for each notification of another
        replica on `channel`. Subscribe before `start()`."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Channel(Protocol):
    """A place reviewers see cards: Slack, Teams or the web inbox.

    Every method raises DeliveryError (retryable or not) when the platform refuses.
    """

    name: str

    async def post_card(self, view: CardView) -> Mapping[str, Any]:
        """Post a new card and return the platform reference needed to edit it later."""
        ...

    async def update_card(self, ref: Mapping[str, Any], view: CardView) -> None:
        """Redraw an existing card in place (votes, outcome, 'escalated to X')."""
        ...

    async def remind(self, ref: Mapping[str, Any], view: CardView) -> None:
        """Nudge the tier's reviewers about the card (a thread reply where possible)."""
        ...


class AlertSink(Protocol):
    """Where warning signs are announced (a Slack or Teams alerts channel)."""

    async def post_alert(self, alert: Alert) -> None:
        """Announce a raised or cleared warning sign; raises DeliveryError like a Channel."""
        ...


@runtime_checkable
class BatchChannel(Protocol):
    """A chat channel that can also draw batch cards (Slack, Teams).

    Both methods raise DeliveryError like the `Channel` methods.
    """

    async def post_batch(self, view: BatchView) -> Mapping[str, Any]:
        """Post a new batch card; returns the reference needed to edit it later."""
        ...

    async def update_batch(self, ref: Mapping[str, Any], view: BatchView) -> None:
        """Redraw a batch card in place (members decided, added, or all decided)."""
        ...


@runtime_checkable
class QueueChannel(Protocol):
    """A chat channel that can draw a tier's queue card (Slack, Teams): one message listing
    and counting what waits while a burst's own cards go out as the rate allows.

    Both methods raise DeliveryError like the `Channel` methods.
    """

    async def post_queue(self, view: QueueView) -> Mapping[str, Any]:
        """Post the queue card, mentioning the tier's reviewers; returns its reference."""
        ...

    async def update_queue(self, ref: Mapping[str, Any], view: QueueView) -> None:
        """Redraw the queue card in place (items arrived, were decided, or all have cards)."""
        ...


class InlineChannel(Protocol):
    """A channel whose card is only a row in Signoff's own database (the web inbox).

    Posting it has no remote side effect to retry, so the engine records the card in the
    transaction of the state change that calls for it, instead of queueing an outbox row.
    """

    name: str

    def card_ref(self, view: CardView) -> Mapping[str, Any]:
        """The reference `post_card` would return; pure, no I/O, never raises."""
        ...


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt at resuming an agent with a decided request's webhook body.

    `resume` is the agent's configured target when it is not the plain webhook (a mapping
    with `kind`, see adapters.resume.spec); `labels` are then the request's labels, where
    such targets find their handle (a Restate awakeable id, a Step Functions task token).
    """

    id: str
    url: str
    body: Mapping[str, Any]
    secret: str | None
    attempt: int
    agent_id: str = ""
    resume: Mapping[str, Any] | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST's outcome: `ok` on 2xx, `gone` on 410 (never retry), else retry.

    `note` says why an ok attempt sent nothing (e.g. no graph waits any more).
    """

    ok: bool
    status_code: int | None = None
    retry_after: float | None = None
    gone: bool = False
    error: str | None = None
    note: str | None = None


class ResumeTarget(Protocol):
    """Sends a decided request back to the agent (a signed webhook, or a runtime's own call)."""

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """Try once; never raises for HTTP or network failures (they come back as a result)."""
        ...


class ReviewService(Protocol):
    """What reviewer-facing channels (Slack, Teams, web) may ask of the engine."""

    async def get(self, request_id: str) -> ApprovalRequest:
        """Raises NotFound."""
        ...

    def check_vote(self, request: ApprovalRequest, reviewer: str, verdict: Verdict) -> None:
        """Raise NotAllowed (with `.code`/`.message`) if `reviewer` may not cast `verdict` now."""
        ...

    async def prepare_vote(self, request_id: str, reviewer: str, verdict: Verdict) -> Ballot:
        """The one entry for a click: the request read once and checked (`check_vote`), with
        whether a form must be shown before `vote`. Raises NotFound, NotAllowed."""
        ...

    def rationale_required(self, request: ApprovalRequest, verdict: Verdict) -> bool: ...

    def may_act(self, reviewer: str, request: ApprovalRequest) -> bool: ...

    async def vote(
        self,
        request_id: str,
        reviewer: str,
        verdict: Verdict,
        *,
        channel: str,
        rationale: str = "",
        name: str | None = None,
        modified_payload: Mapping[str, Any] | None = None,
        response: Any = None,
        answer: str | None = None,
    ) -> ApprovalRequest:
        """Record a verdict: `response` is a respond verdict's answer as a value, `answer` as
        the reviewer typed it (read against the request's schema here, so a channel need not
        read the request first). Raises NotFound, NotAllowed, InvalidInput with `.field`
        rationale, modified_payload or response."""
        ...

    async def vote_many(
        self,
        request_ids: Sequence[str],
        reviewer: str,
        verdict: Verdict,
        *,
        channel: str,
        rationale: str = "",
        name: str | None = None,
        batch_id: str | None = None,
        tier: str | None = None,
    ) -> Sequence[BatchItemResult]:
        """Record one ordinary vote per item (approve or reject) from a batch.

        Items that are not batch-eligible, not at `tier`, or refused by the vote rules are
        reported per item and left untouched; the others are recorded regardless. Raises
        InvalidInput for another verdict, or for a reject without a rationale.
        """
        ...

    async def pending_for(self, reviewer: str, limit: int = 200) -> Sequence[ApprovalRequest]:
        """Items awaiting a verdict that `reviewer` may act on, oldest deadline first."""
        ...

    def check_stop_authority(self, reviewer: str) -> None:
        """Raise NotAllowed unless `reviewer` sits in the top tier."""
        ...

    def check_standing(self, ask: GrantRequest) -> None:
        """Raise NotAllowed, NotFound or InvalidInput unless the grant may be made as asked."""
        ...

    async def grant_standing(self, ask: GrantRequest, *, channel: str) -> StandingApproval:
        """Store a standing approval (audited). Raises what `check_standing` raises."""
        ...

    async def revoke_standing(self, grant_id: str, by: str, *, channel: str) -> StandingApproval:
        """End a grant now (audited); its grantor or a top-tier reviewer may. Raises NotFound
        (unknown or already revoked), NotAllowed."""
        ...

    async def set_stopped(
        self, agent_id: str, stopped: bool, *, actor: str, reason: str, channel: str
    ) -> AgentState:
        """The stop button. Raises NotFound for an unknown agent."""
        ...
