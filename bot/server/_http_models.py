"""The request and response models of the agent HTTP API: they are its OpenAPI schema."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.core.answers import check_schema
from bot.core.errors import InvalidInput
from bot.core.people import check_identity
from signoff_client.submission import Submission


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class SubmitIn(Submission):
    """`Submission` with the checks that need the server's own knowledge."""

    @field_validator("requested_by")
    @classmethod
    def _requester_identity(cls, value: str | None) -> str | None:
        # An id without its platform never matches a reviewer, which silently disabled the
        # self-approval block.
        return check_identity(value) if value is not None else None

    @field_validator("response_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                check_schema(value)
            except InvalidInput as exc:
                raise ValueError(exc.problem) from None
        return value

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
