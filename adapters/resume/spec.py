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

    def destination(self) -> str:
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

    def destination(self) -> str:
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

    def destination(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        return f"https://states.{self.region}.amazonaws.com" if self.region else "aws:states"


_ID_SOURCE = re.compile(r"^(thread_id|labels\.[A-Za-z0-9_.-]{1,100})$")


def _id_source(value: str) -> str:
    if not _ID_SOURCE.match(value):
        raise ValueError("must be `thread_id` or `labels.<key>`")
    return value


def id_from(source: str, thread_id: str | None, labels: Mapping[str, Any]) -> str | None:
    """The id a `*_from` setting names: the request's thread id or one of its labels."""
    if source == "thread_id":
        return thread_id or None
    value = labels.get(source.removeprefix("labels."))
    return value if isinstance(value, str) and value else None


class TemporalResume(_Spec):
    """Signal a waiting Temporal workflow through the temporalio client.

    The workflow id is the request's `thread_id` or one of its labels (`workflow_id_from`);
    the signal carries the verdict (JSON). `tls` and `api_key_env` are for Temporal Cloud
    (an API key implies TLS).
    """

    kind: Literal["temporal"]
    address: str = Field(pattern=r"^[A-Za-z0-9.\-\[\]:]{1,255}:[0-9]{1,5}$")
    namespace: str = Field(default="default", min_length=1, max_length=255)
    workflow_id_from: str = "labels.temporal_workflow_id"
    signal: str = Field(default="signoff_verdict", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,199}$")
    tls: bool = False
    api_key_env: str | None = None

    _check_source = field_validator("workflow_id_from")(_id_source)
    _check_env = field_validator("api_key_env")(_env_name)

    def destination(self) -> str:
        return f"temporal://{self.address}/{self.namespace}"


class AzureDurableResume(_Spec):
    """Raise an event in a waiting Azure Durable Functions orchestration.

    `POST {base_url}/runtime/webhooks/durabletask/instances/{instance}/raiseEvent/{event}`
    with the verdict as the JSON body, authorised by the extension's system key
    (`system_key_env`, sent as `code`). The instance id is the request's `thread_id` or a
    label (`instance_id_from`).
    """

    kind: Literal["azure_durable"]
    base_url: str
    event_name: str = Field(default="SignoffVerdict", pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    instance_id_from: str = "labels.durable_instance_id"
    task_hub: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{3,45}$")
    connection: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    system_key_env: str

    _check_url = field_validator("base_url")(_http_url)
    _check_source = field_validator("instance_id_from")(_id_source)
    _check_env = field_validator("system_key_env")(_env_name)

    def destination(self) -> str:
        return f"{self.base_url}/runtime/webhooks/durabletask/instances"


ResumeSpec = Annotated[
    WebhookResume
    | LangGraphServerResume
    | RestateResume
    | StepFunctionsResume
    | TemporalResume
    | AzureDurableResume,
    Field(discriminator="kind"),
]
RESUME_KINDS = (
    "webhook",
    "langgraph_server",
    "restate",
    "step_functions",
    "temporal",
    "azure_durable",
)

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
