"""The request and response models of the agent HTTP API: they are its OpenAPI schema."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from bot.core.answers import check_schema
from bot.core.domain import Action
from bot.core.errors import InvalidInput
from bot.core.people import check_identity
from bot.engine.machine import NewRequest


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionIn(_Body):
    kind: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict)


class ContextIn(BaseModel):
    """The context bundle reviewers read; documented keys, others are kept as given."""

    model_config = ConfigDict(extra="allow")
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


# One regex scan per string: a generator over every character cost more than routing.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _first_unstorable(value: Any, path: str) -> str | None:
    """The path of the first string a database or a hash cannot take (NUL, lone surrogate)."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_unstorable(key, path) or _first_unstorable(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_unstorable(item, f"{path}[{index}]")
            if found:
                return found
    return None


class SubmitIn(_Body):
    action: ActionIn
    # strict: JSON numbers only. Lax mode read `true` as 1.0 and "0.9" as 0.9, and routing
    # then approved on a confidence the agent never stated.
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)
    thread_id: str | None = Field(default=None, max_length=500)
    amount: float = Field(default=0.0, allow_inf_nan=False, strict=True)
    currency: str = Field(default="", max_length=10)
    reversible: bool = True
    domain: str = Field(default="", max_length=100)
    sentiment: float = Field(default=0.0, ge=-1.0, le=1.0, allow_inf_nan=False, strict=True)
    requested_by: str | None = Field(default=None, max_length=200)

    @field_validator("requested_by")
    @classmethod
    def _requester_identity(cls, value: str | None) -> str | None:
        # An id without its platform never matches a reviewer, which silently disabled the
        # self-approval block.
        return check_identity(value) if value is not None else None

    callback_url: str | None = Field(default=None, max_length=2000)
    labels: dict[str, Any] = Field(default_factory=dict)
    context: ContextIn = Field(default_factory=ContextIn)
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

    @field_validator("response_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                check_schema(value)
            except InvalidInput as exc:
                raise ValueError(exc.problem) from None
        return value

    def new_request(self) -> NewRequest:
        """The submission as the engine takes it (shape already checked here)."""
        return NewRequest(
            action=Action(self.action.kind, self.action.summary, self.action.payload),
            confidence=self.confidence,
            thread_id=self.thread_id,
            amount=self.amount,
            currency=self.currency,
            reversible=self.reversible,
            domain=self.domain,
            sentiment=self.sentiment,
            requested_by=self.requested_by,
            callback_url=self.callback_url,
            labels=self.labels,
            context=self.context.model_dump(),
            cost=self.cost,
            question=self.question,
            response_schema=self.response_schema,
            reject_options=tuple(self.reject_options),
        )

    @model_validator(mode="after")
    def _storable_text(self) -> SubmitIn:
        found = _first_unstorable(self.model_dump(), "body")
        if found:
            raise ValueError(f"{found} holds a NUL character or an unpaired surrogate")
        return self


class OutcomeIn(_Body):
    correct: bool
    note: str | None = Field(default=None, max_length=5000)


class StopIn(_Body):
    reason: str = Field(default="", max_length=2000)


class AgentStateOut(BaseModel):
    agent_id: str
    stopped: bool
    reason: str
    by: str
    at: str


class AgentOut(BaseModel):
    agent_id: str
    stopped: bool
    reason: str


class DeliveryOut(BaseModel):
    id: str
    kind: str
    request_id: str | None
    status: Literal["pending", "done", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str | None
    url: str | None
    type: str | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class ErrorOut(BaseModel):
    error: str
    detail: Any = None


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidBodyOut(BaseModel):
    """422: `error` is `invalid_body` (or `invalid_<field>` for a check beyond the schema,
    such as `invalid_callback_url`); `detail` lists the problems, pydantic's way."""

    error: str
    detail: list[FieldErrorOut]
