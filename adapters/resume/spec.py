"""The `resume:` block of an agent in the config: where its decided requests go.

`bot.server.config` validates it with these models; `AgentSpec.resume` carries it as a plain
mapping, and each resume target reads its own kind back with `parse_resume`. The keys are
documented in docs/agents.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from bot.core.ports import DeliveryAttempt, WebhookDelivery

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError("must be the name of an environment variable")
    return value


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError("must be a label key (letters, digits, '_', '.', '-')")
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookResume(_Spec):
    """The default: a Standard Webhooks POST to `callback_url` (CONTRACT section 7)."""

    kind: Literal["webhook"] = "webhook"


class LangGraphServerResume(_Spec):
    """Resume a thread on a LangGraph Server (`POST {url}/threads/{thread_id}/runs`).

    The request's `thread_id` is the LangGraph thread; `api_key_env` names the variable
    holding the deployment's API key (sent as `x-api-key`).
    """

    kind: Literal["langgraph_server"]
    url: str
    assistant_id: str = Field(min_length=1, max_length=200)
    api_key_env: str | None = None

    _check_url = field_validator("url")(_http_url)
    _check_env = field_validator("api_key_env")(_env_name)

    def address(self) -> str:
        return f"{self.url}/threads"


class RestateResume(_Spec):
    """Complete a Restate awakeable (`POST {ingress}/restate/awakeables/{id}/resolve|reject`).

    The awakeable id is the request's `labels[awakeable_label]`. Approvals resolve it with
    the verdict (JSON); denials (rejected, expired, cancelled) reject it with the verdict as
    the reason text, or resolve it too with `on_denied: resolve`.
    """

    kind: Literal["restate"]
    ingress: str
    awakeable_label: str = "restate_awakeable_id"
    auth_token_env: str | None = None
    on_denied: Literal["reject", "resolve"] = "reject"

    _check_url = field_validator("ingress")(_http_url)
    _check_label = field_validator("awakeable_label")(_label)
    _check_env = field_validator("auth_token_env")(_env_name)

    def address(self) -> str:
        return f"{self.ingress}/restate/awakeables"


class StepFunctionsResume(_Spec):
    """Answer an AWS Step Functions task token (`SendTaskSuccess` / `SendTaskFailure`).

    The token is the request's `labels[task_token_label]`. Credentials come from boto3's
    usual chain (environment, profile, instance role). Denials fail the task with error
    `Signoff.Rejected` / `Signoff.Expired` / `Signoff.Cancelled` and the verdict (JSON) as
    the cause, or succeed it with the verdict with `on_denied: succeed`.
    """

    kind: Literal["step_functions"]
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{2,40}$")
    endpoint_url: str | None = None
    task_token_label: str = "sfn_task_token"
    on_denied: Literal["fail", "succeed"] = "fail"

    _check_label = field_validator("task_token_label")(_label)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None

    def address(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        return f"https://states.{self.region}.amazonaws.com" if self.region else "aws:states"


ResumeSpec = Annotated[
    WebhookResume | LangGraphServerResume | RestateResume | StepFunctionsResume,
    Field(discriminator="kind"),
]
RESUME_KINDS = ("webhook", "langgraph_server", "restate", "step_functions")

_ADAPTER: TypeAdapter[ResumeSpec] = TypeAdapter(ResumeSpec)


def parse_resume(data: Mapping[str, Any]) -> ResumeSpec:
    """Read a `resume:` mapping back into its model. Raises pydantic.ValidationError."""
    return _ADAPTER.validate_python(dict(data))


S = TypeVar("S", bound=BaseModel)


def expect_resume(delivery: WebhookDelivery, kind: type[S]) -> S | DeliveryAttempt:
    """The delivery's resume config as `kind`, or the final failed attempt saying why not.

    A config that does not parse or names another target is final (`gone`): retrying
    cannot mend it.
    """
    try:
        spec = parse_resume(delivery.resume or {})
    except ValidationError as exc:
        return DeliveryAttempt(ok=False, gone=True, error=f"bad resume config: {exc}")
    if not isinstance(spec, kind):
        return DeliveryAttempt(ok=False, gone=True, error=f"not a {spec.kind} delivery")
    return spec
