"""What an agent submits to `POST /v1/requests`: the one declaration of its fields.

The server validates request bodies with these models (adding only the checks that need
its own knowledge: identities, JSON Schema, storable text) and its engine routes them as
they are; `SignoffClient.request_approval` takes the same fields as keyword arguments
(tests/unit/test_client.py checks that they match). Validating with them on the agent's
side is optional: the server's answer stays the authority.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmissionAction(_Body):
    """The action the agent is about to take."""

    kind: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict)


class SubmissionContext(BaseModel):
    """The context bundle reviewers read; documented keys, others are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)
    summary: str | None = None
    goal: str | None = None
    recommendation: str | None = None
    alternatives: list[Any] = Field(default_factory=list)
    conversation: list[Any] = Field(default_factory=list)
    actions_attempted: list[Any] = Field(default_factory=list)
    failure_reason: str | None = None
    customer: dict[str, Any] = Field(default_factory=dict)
    transaction: dict[str, Any] = Field(default_factory=dict)
    policies: list[Any] = Field(default_factory=list)


class Submission(_Body):
    """A request for approval, as the agent states it."""

    action: SubmissionAction
    # strict: JSON numbers only. Lax mode read `true` as 1.0 and "0.9" as 0.9, and routing
    # then approved on a confidence the agent never stated.
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)
    thread_id: str | None = Field(default=None, max_length=500)
    amount: float = Field(default=0.0, allow_inf_nan=False, strict=True)
    currency: str = Field(default="", max_length=10)
    reversible: bool = True
    domain: str = Field(default="", max_length=100)
    sentiment: float = Field(default=0.0, ge=-1.0, le=1.0, allow_inf_nan=False, strict=True)
    # The person who asked the agent, as `platform:id`: they may not approve it themselves.
    requested_by: str | None = Field(default=None, max_length=200)
    callback_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, Any] = Field(default_factory=dict)
    context: SubmissionContext = Field(default_factory=SubmissionContext)
    # What the agent spent on this request, in `currency` (a JSON number: the cost of
    # oversight is reported per resolution).
    cost: Annotated[float, Strict()] | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    # Asking, not only approving: what the reviewer should answer, the JSON Schema the
    # answer must meet, and the reasons offered when rejecting.
    question: str | None = Field(default=None, min_length=1, max_length=2000)
    response_schema: dict[str, Any] | None = None
    reject_options: list[Annotated[str, Field(min_length=1, max_length=150)]] = Field(
        default_factory=list, max_length=20
    )
