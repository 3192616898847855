"""Domain data: approval requests, votes, tier moves, outbox messages and audit events.

Everything here is frozen; the engine derives new values and hands them to the repository
as one `Change`, which the repository writes in a single transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.core.audit_records import GENESIS_HASH as GENESIS_HASH
from bot.core.audit_records import AuditEvent as AuditEvent
from bot.core.audit_records import AuditRecord as AuditRecord
from bot.core.audit_records import AuditVerification as AuditVerification
from bot.core.audit_records import audit_hash as audit_hash
from bot.core.audit_records import verify_chain as verify_chain
from bot.core.clock import as_utc as as_utc
from bot.core.clock import isoformat as isoformat
from bot.core.clock import utcnow as utcnow
from bot.core.learning import StandingUse
from bot.core.routable import Routable as Routable
from bot.core.routable import routing_input_of as routing_input_of
from bot.core.web_sessions import LoginFailures as LoginFailures
from bot.core.web_sessions import WebSession as WebSession
from routing import Lane, ReviewState, Risk, RoutingInput
from signoff_client.canonical import canonical_json as canonical_json
from signoff_client.canonical import sha256_hex as sha256_hex


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    MODIFIED = "modified"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REVERSED = "reversed"


FINAL_STATUSES = frozenset(s for s in Status if s is not Status.PENDING)
# The reason a request carries when its agent was stopped (at submit or while it waited).
STOPPED_REASON = "agent_stopped"

POLICY_ACTOR = "policy"
"""Who decides when no person did: `on_timeout` verdicts are recorded under this name."""


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    MODIFY = "modify"
    CONFIRM = "confirm"
    REVERSE = "reverse"
    # An answer to the request's `question` (validated against its `response_schema`); it
    # counts as the person's approval, so a two-person item still needs two people.
    RESPOND = "respond"


class ReviewStatus(StrEnum):
    """After-the-fact review of an item that already proceeded (review lane, sampled)."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    REVERSED = "reversed"
    CLOSED = "closed"


class OutboxKind(StrEnum):
    POST_CARD = "post_card"
    UPDATE_CARDS = "update_cards"
    REMIND = "remind"
    WEBHOOK = "webhook"
    ALERT = "alert"
    POST_BATCH = "post_batch"
    UPDATE_BATCH = "update_batch"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_RANDOM_BITS = 80
# The last id's (millisecond, random part): ids made within one millisecond count up from
# it, so they sort in the order they were made (ULID's monotonic mode).
_last_id = [0, 0]


def new_id(prefix: str, at: datetime | None = None) -> str:
    """A sortable id: 48-bit millisecond time then 80 random bits, Crockford base32 (ULID).

    Within one millisecond the random part counts up from the previous id's, so a fast
    process's ids (requests listed "in creation order") still sort in creation order.
    """
    millis = int((at.timestamp() if at else time.time()) * 1000)
    random_part = secrets.randbits(_RANDOM_BITS)
    if millis == _last_id[0] and _last_id[1] + 1 < 1 << _RANDOM_BITS:
        random_part = _last_id[1] + 1
    _last_id[:] = [millis, random_part]
    value = (millis << _RANDOM_BITS) | random_part
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars)).lower()}"


@dataclass(frozen=True)
class Action:
    kind: str
    summary: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "summary": self.summary, "payload": dict(self.payload)}

    @property
    def sha256(self) -> str:
        return sha256_hex(canonical_json(self.to_json()))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        return cls(
            kind=data["kind"], summary=data["summary"], payload=dict(data.get("payload", {}))
        )


def readable(code: str) -> str:
    """An identifier as words: `high_value_transaction` -> "High value transaction"."""
    return code.replace("_", " ").replace(":", ": ").strip().capitalize()


@dataclass(frozen=True)
class ReasonText:
    """Why a person sees a request, in words: a short title and, when known, a sentence.

    Fixed when the request is routed, so a later policy edit does not rewrite the record.
    """

    code: str
    title: str
    explain: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.code, "title": self.title, "explain": self.explain}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReasonText:
        explain = data.get("explain")
        return cls(str(data["reason"]), str(data["title"]), str(explain) if explain else None)


@dataclass(frozen=True)
class Vote:
    reviewer: str
    name: str
    verdict: Verdict
    rationale: str
    at: datetime
    channel: str
    action_sha256: str
    # The person behind `reviewer` when the vote was cast (people:); the identity itself
    # for an identity no person lists. Empty only for votes stored before people existed.
    person: str = ""
    # A `respond` vote's answer (any JSON value); None for every other verdict.
    response: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "person": self.person or self.reviewer,
            "name": self.name,
            "verdict": self.verdict.value,
            "rationale": self.rationale,
            "at": isoformat(self.at),
            "channel": self.channel,
            "action_sha256": self.action_sha256,
            "response": self.response,
        }


@dataclass(frozen=True)
class TierMove:
    from_tier: str | None
    to_tier: str
    at: datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.from_tier,
            "to": self.to_tier,
            "at": isoformat(self.at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    agent_id: str
    action: Action
    confidence: float
    status: Status
    lane: Lane
    risk: Risk
    reasons: tuple[str, ...]
    tier: str | None
    approvals_required: int
    review: ReviewState
    created_at: datetime
    updated_at: datetime
    thread_id: str | None = None
    amount: float = 0.0
    currency: str = ""
    reversible: bool = True
    domain: str = ""
    sentiment: float = 0.0
    requested_by: str | None = None
    callback_url: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    review_status: ReviewStatus | None = None
    decided_at: datetime | None = None
    deadline_at: datetime | None = None
    remind_at: datetime | None = None
    modified_action: Action | None = None
    outcome: Mapping[str, Any] | None = None
    votes: tuple[Vote, ...] = ()
    history: tuple[TierMove, ...] = ()
    version: int = 0
    # A synthetic attention check (oversight.canaries): its right answer is known, it is
    # never delivered to an agent and never counted in the agent-facing figures.
    canary: bool = False
    # The escalation model's score when the request arrived (prediction mode shadow or
    # active), None when no model scored it.
    predicted_escalation: float | None = None
    # What the agent reported spending on this request, in `currency`.
    cost: float | None = None
    # `reasons` in words (rule titles and sentences), fixed when the request was routed.
    reason_texts: tuple[ReasonText, ...] = ()
    # What the agent asks the reviewer, the JSON Schema an answer must meet, and the reasons
    # a reviewer may pick from when rejecting.
    question: str | None = None
    response_schema: Mapping[str, Any] | None = None
    reject_options: tuple[str, ...] = ()

    @property
    def response(self) -> Any:
        """The answer the agent receives: the last counted `respond` vote's, else None."""
        for vote in reversed(self.approvals_for_current_action()):
            if vote.verdict is Verdict.RESPOND:
                return vote.response
        return None

    @property
    def reasons_text(self) -> list[str]:
        """The titles of `reasons` (identifiers made readable for requests stored before)."""
        if self.reason_texts:
            return [t.title for t in self.reason_texts]
        return [readable(code) for code in self.reasons]

    @property
    def current_action(self) -> Action:
        """The action the agent may execute if approved: the human-edited one, if any."""
        return self.modified_action or self.action

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def ended_by_stop(self) -> bool:
        """Rejected because its agent was stopped, not by a reviewer or a deadline."""
        return self.status is Status.REJECTED and STOPPED_REASON in self.reasons

    @property
    def awaiting_verdict(self) -> bool:
        """True while a reviewer can still act: pending items, and review items not yet closed."""
        return self.status is Status.PENDING or self.review_status is ReviewStatus.OPEN

    def routing_input(self) -> RoutingInput:
        """What routing saw of this request when it arrived (the agent's action, not a
        reviewer's edit), so a replay under another policy routes the same inputs."""
        return routing_input_of(
            self, request_id=self.id, agent_id=self.agent_id, context=self.context
        )

    def approvals_for_current_action(self) -> tuple[Vote, ...]:
        digest = self.current_action.sha256
        return tuple(
            v
            for v in self.votes
            if v.verdict in (Verdict.APPROVE, Verdict.MODIFY, Verdict.RESPOND)
            and v.action_sha256 == digest
        )


@dataclass(frozen=True)
class Ballot:
    """A reviewer's click, checked before anything is asked or recorded: the request as it
    stands, the verdict, and what the verdict still needs from them (a form to fill in)."""

    request: ApprovalRequest
    verdict: Verdict
    needs_rationale: bool

    @property
    def needs_form(self) -> bool:
        """A rationale, an edited payload (modify) or an answer (respond) is still missing."""
        return self.needs_rationale or self.verdict in (Verdict.MODIFY, Verdict.RESPOND)


@dataclass(frozen=True)
class AgentSpec:
    """An agent as configured: where it is resumed and who owns it."""

    id: str
    key_sha256: tuple[str, ...] = ()
    callback_url: str | None = None
    callback_prefixes: tuple[str, ...] = ()
    webhook_secret_env: str | None = None
    owner: str | None = None
    # The agent's resume target when it is not the plain webhook: the config's `resume:`
    # mapping (with `kind`), read by adapters.resume; None means a signed webhook.
    resume: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class AgentState:
    agent_id: str
    stopped: bool
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    agent_id: str
    key: str
    body_sha256: str
    request_id: str
    response: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    kind: OutboxKind
    request_id: str | None
    payload: Mapping[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    status: OutboxStatus = OutboxStatus.PENDING
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "request_id": self.request_id,
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": isoformat(self.next_attempt_at),
            "last_error": self.last_error,
            "created_at": isoformat(self.created_at),
            "url": self.payload.get("url"),
            "type": self.payload.get("body", {}).get("type"),
        }


@dataclass(frozen=True)
class OutboxResult:
    """How one attempt at an outbox message ended, with what to record alongside."""

    status: OutboxStatus
    next_attempt_at: datetime | None = None
    error: str | None = None
    audit: tuple[AuditEvent, ...] = ()
    card: CardRef | None = None
    # A batch card just posted: (batch id, platform reference), stored with the result.
    batch_ref: tuple[str, Mapping[str, Any]] | None = None
    # False when the attempt does not count towards giving up: the platform throttled it
    # (429), or it waits on another delivery; it is simply due again at `next_attempt_at`.
    counted: bool = True


@dataclass(frozen=True)
class CardRef:
    """Where one copy of a request's card lives, so it can be edited in place later."""

    request_id: str
    channel: str
    tier: str
    ref: Mapping[str, Any]
    posted_at: datetime


class BatchStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class BatchCard:
    """One posted digest of same-kind items waiting at one tier, in one chat channel.

    `members` are the items drawn on the card (oldest first, at most `batch.max_items`);
    `total` is how many eligible items the group had when it was planned, so the card can
    say "and N more". At most one card per (tier, kind, channel, target) is open at a time.
    """

    id: str
    tier: str
    kind: str
    channel: str
    target: str
    members: tuple[str, ...]
    total: int
    status: BatchStatus
    created_at: datetime
    updated_at: datetime
    ref: Mapping[str, Any] | None = None
    version: int = 1

    @property
    def group(self) -> tuple[str, str, str, str]:
        return (self.tier, self.kind, self.channel, self.target)


QUEUE_KIND = "(queue)"
"""The `kind` of a `BatchCard` that is a tier's queue card (`bot.engine.queue_cards`): the
digest posted while a burst waits for its own cards, listing what waits at the tier. Batch
groups leave an action of this kind out, so the two never share a group."""


def batch_blocker(request: ApprovalRequest) -> tuple[str, str] | None:
    """Why `request` may not be decided from a batch, as (code, message); None if it may.

    Only routine items qualify: pending escalate-lane items that one approval decides and
    that are not high risk. High-risk and two-person items are always decided one by one,
    on their own card, however they reach a batch (a forged id in a payload included).
    """
    if request.status is not Status.PENDING:
        return "already_decided", f"this item is already {request.status.value}"
    if request.lane is not Lane.ESCALATE:
        return "not_batchable", "this item is not waiting for a verdict"
    if request.risk is Risk.HIGH:
        return "high_risk", "high-risk items are decided one by one, on their own card"
    if request.approvals_required != 1:
        return "two_person", "two-person items are decided one by one, on their own card"
    return None


@dataclass(frozen=True)
class BatchItemResult:
    """What a batch vote did to one selected item: recorded, or refused and why."""

    request_id: str
    recorded: bool
    code: str | None = None
    message: str | None = None
    request: ApprovalRequest | None = None


@dataclass(frozen=True)
class Change:
    """Everything one state transition writes, applied by the repository in ONE transaction.

    `expected_version` is the version the engine read; the repository refuses the change
    (VersionConflict) if another writer moved the request on meanwhile.
    """

    request: ApprovalRequest | None = None
    expected_version: int | None = None
    new_votes: tuple[Vote, ...] = ()
    new_moves: tuple[TierMove, ...] = ()
    outbox: tuple[OutboxMessage, ...] = ()
    audit: tuple[AuditEvent, ...] = ()
    idempotency: IdempotencyRecord | None = None
    agent_state: AgentState | None = None
    # Cards of channels that are only database rows (the web inbox), posted in this same
    # transaction instead of through the outbox; their `posted` events are in `audit`.
    cards: tuple[CardRef, ...] = ()
    # A standing approval used by this (new) request: counted in the same transaction, or
    # the whole change is refused (StandingExhausted) when the grant has no use left.
    standing_use: StandingUse | None = None


@dataclass(frozen=True)
class Alert:
    """One warning sign's state: raised once while it holds, cleared when it stops holding.

    `subject` tells apart several alerts of one kind (the reviewer of a rubber-stamp alert,
    the tier of a growing queue); it is "" for service-wide signs.
    """

    code: str
    subject: str
    active: bool
    message: str
    figures: Mapping[str, Any]
    raised_at: datetime
    updated_at: datetime
    cleared_at: datetime | None = None

    @property
    def title(self) -> str:
        """One line for an alert channel: what holds (or no longer holds), and for whom."""
        name = self.code.replace("_", " ")
        about = f" ({self.subject})" if self.subject else ""
        return f"Warning sign: {name}{about}" if self.active else f"Cleared: {name}{about}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        cleared = data.get("cleared_at")
        return cls(
            code=str(data["code"]),
            subject=str(data["subject"]),
            active=bool(data["active"]),
            message=str(data["message"]),
            figures=dict(data.get("figures") or {}),
            raised_at=datetime.fromisoformat(str(data["raised_at"])),
            updated_at=datetime.fromisoformat(str(data.get("updated_at") or data["raised_at"])),
            cleared_at=datetime.fromisoformat(str(cleared)) if cleared else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subject": self.subject,
            "active": self.active,
            "message": self.message,
            "figures": dict(self.figures),
            "raised_at": isoformat(self.raised_at),
            "updated_at": isoformat(self.updated_at),
            "cleared_at": isoformat(self.cleared_at),
        }


@dataclass(frozen=True)
class Page:
    items: tuple[ApprovalRequest, ...]
    next_cursor: str | None
