"""What the agent HTTP API answers, as the agent SDK reads it: requests, votes, routing,
the resume webhook's event and an agent's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from signoff_client.canonical import canonical_json, sha256_hex

Status = Literal["pending", "approved", "modified", "rejected", "expired", "cancelled", "reversed"]
Lane = Literal["autonomous", "review", "escalate"]
Risk = Literal["low", "medium", "high"]

# These mirror the server's response models (bot/engine/wire.py) without importing FastAPI. They
# ignore unknown fields, so a newer server does not break an older agent;
# tests/unit/test_client.py checks that no field of the server's models is missing here.


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Action(_Result):
    """What the agent wants to do; `payload` is what a reviewer may edit."""

    kind: str
    summary: str
    payload: dict[str, Any] = Field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON (keys sorted, no spaces, UTF-8): what votes bind to."""
        return sha256_hex(canonical_json(self.model_dump()))


class Vote(_Result):
    reviewer: str
    name: str
    verdict: Literal["approve", "reject", "modify", "confirm", "reverse", "respond"]
    rationale: str
    at: datetime
    channel: str
    action_sha256: str = ""
    # The person behind `reviewer` (the server's `people:`); empty from older servers.
    person: str = ""
    # A `respond` vote's answer to the request's question; None for other verdicts.
    response: Any = None


class TierMove(_Result):
    from_: str | None = Field(default=None, alias="from")
    to: str
    at: datetime
    reason: str


class RoutingAnswer(_Result):
    """The answer to `request_approval`: proceed now (`approved`), wait (`pending`) or not."""

    id: str
    status: Literal["approved", "pending", "rejected"]
    lane: Lane
    risk: Risk
    reasons: list[str]
    tier: str | None
    approvals_required: int
    created_at: datetime
    review: Literal["queued", "sampled_out", "none"]
    # The standing approval (sa_...) that approved an escalated request at once, if one did.
    standing_approval: str | None = None

    @property
    def proceed(self) -> bool:
        """True when the agent may act now (autonomous and review lanes, or a standing
        approval)."""
        return self.status == "approved"


class RequestDetail(_Result):
    """A request as `GET /v1/requests/{id}` shows it: status, votes, the modified action."""

    id: str
    agent_id: str
    thread_id: str | None
    status: Status
    lane: Lane
    risk: Risk
    reasons: list[str]
    tier: str | None
    approvals_required: int
    approvals: int
    review: Literal["queued", "sampled_out", "none"]
    review_status: str | None
    action: Action
    action_sha256: str
    modified_action: Action | None
    confidence: float
    amount: float
    currency: str
    reversible: bool
    domain: str
    sentiment: float
    requested_by: str | None
    callback_url: str | None
    labels: dict[str, Any]
    context: dict[str, Any]
    votes: list[Vote]
    history: list[TierMove]
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    deadline_at: datetime | None
    outcome: dict[str, Any] | None
    cost: float | None = None
    # Why a person saw it, as the rules' titles; the question asked and the answer given.
    reasons_text: list[str] = Field(default_factory=list)
    question: str | None = None
    response_schema: dict[str, Any] | None = None
    reject_options: list[str] = Field(default_factory=list)
    response: Any = None

    @property
    def current_action(self) -> Action:
        """The action the agent may execute if approved: the reviewer's edit, if any."""
        return self.modified_action or self.action

    @property
    def is_final(self) -> bool:
        return self.status != "pending"


class ResumeData(_Result):
    id: str
    agent_id: str
    thread_id: str | None
    status: Status
    action: Action
    modified_action: Action | None
    action_sha256: str
    votes: list[Vote]
    decided_at: datetime | None
    reasons: list[str] = Field(default_factory=list)
    reasons_text: list[str] = Field(default_factory=list)
    question: str | None = None
    # The reviewer's answer to `question` (a `respond` verdict), None without one.
    response: Any = None

    @property
    def current_action(self) -> Action:
        """The action the agent may execute: `action_sha256` is its hash."""
        return self.modified_action or self.action


class ResumeEvent(_Result):
    """A verified resume webhook. `webhook_id` is stable across retries: use it to dedupe."""

    type: str
    timestamp: datetime
    data: ResumeData
    webhook_id: str = ""


class AgentState(_Result):
    """The key's own agent (`GET /v1/agents/{id}`): whether it is stopped, and why."""

    agent_id: str
    stopped: bool
    reason: str = ""
