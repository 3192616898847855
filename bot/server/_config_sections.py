"""The sections of the configuration file (CONTRACT section 3), one pydantic model each.

`bot.server.config` assembles them into `Settings` and re-exports them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from adapters.resume.spec import ResumeSpec, WebhookResume
from bot.core.callbacks import default_prefix, parse_http_url
from bot.core.domain import AgentSpec
from bot.core.lanes import OutboxCaps
from bot.core.people import check_identity
from bot.engine.canaries import CanaryPolicy
from bot.oversight.figures import Thresholds
from routing import Duration

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Section(BaseModel):
    """A config section: unknown keys are errors and a validated section never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _prefix(value: str) -> str:
    parse_http_url(value)
    return value


class AgentConfig(Section):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    key_sha256: str | list[str] | None = None
    callback_url: str | None = None
    # Parsed at load (bot.callbacks): each must be an http(s) URL with a host; no path is "/".
    callback_prefixes: list[Annotated[str, AfterValidator(_prefix)]] | None = None
    webhook_secret_env: str | None = None
    owner: str | None = None
    resume: ResumeSpec | None = None

    @field_validator("key_sha256")
    @classmethod
    def _hex_digests(cls, value: str | list[str] | None) -> str | list[str] | None:
        for digest in [value] if isinstance(value, str) else value or []:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("must be the 64-character lowercase sha256 hex of the API key")
        return value

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_http_url(value)
        return value

    @field_validator("owner")
    @classmethod
    def _owner_identity(cls, value: str | None) -> str | None:
        return check_identity(value) if value is not None else None

    @field_validator("webhook_secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable")
        return value

    def spec(self) -> AgentSpec:
        keys = [self.key_sha256] if isinstance(self.key_sha256, str) else self.key_sha256 or []
        if self.resume is not None and not isinstance(self.resume, WebhookResume):
            # Another runtime resumes this agent: the engine queues its deliveries to that
            # target's address (shown in GET /v1/deliveries), and per-request callback URLs
            # are refused (no prefixes).
            return AgentSpec(
                id=self.id,
                key_sha256=tuple(keys),
                callback_url=self.resume.destination(),
                owner=self.owner,
                resume=self.resume.model_dump(),
            )
        prefixes = self.callback_prefixes
        if prefixes is None and self.callback_url:
            prefixes = [default_prefix(self.callback_url)]
        return AgentSpec(
            id=self.id,
            key_sha256=tuple(keys),
            callback_url=self.callback_url,
            callback_prefixes=tuple(prefixes or ()),
            webhook_secret_env=self.webhook_secret_env,
            owner=self.owner,
        )


@dataclass(frozen=True)
class SlackCredentials:
    """Slack's secrets, read from the environment; kept out of every repr so none is logged.

    `signing_secret` verifies requests at `POST /slack/events`; without it that endpoint
    refuses everything. `app_token` (``xapp-...``) connects over Socket Mode, whose
    envelopes Slack does not sign: the WebSocket itself, opened with the app token, is the
    proof of origin.
    """

    bot_token: str = field(repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)


class SlackConfig(Section):
    # None: on when the credentials are set (and required when tiers use Slack, see
    # bot.preflight); false: off whatever the environment holds; true: required.
    enabled: bool | None = None
    bot_token_env: str = "SLACK_BOT_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    app_token_env: str = "SLACK_APP_TOKEN"
    api_url: str = "https://slack.com/api/"
    alerts_channel: str | None = None

    def credentials(self, env: Mapping[str, str]) -> SlackCredentials | None:
        """Slack is on with the bot token and a way to hear from Slack: the signing secret
        (HTTP), the app token (Socket Mode), or both. None means Slack is off, as does
        `enabled: false`."""
        if self.enabled is False:
            return None
        token = env.get(self.bot_token_env)
        secret = env.get(self.signing_secret_env) or None
        app_token = env.get(self.app_token_env) or None
        if not token or not (secret or app_token):
            return None
        return SlackCredentials(token, secret, app_token)


class TeamsConfig(Section):
    # None: on when the app id is set; false: off whatever the environment holds.
    enabled: bool | None = None
    auth: Literal["botframework", "none"] = "botframework"
    app_id_env: str = "TEAMS_APP_ID"
    app_password_env: str = "TEAMS_APP_PASSWORD"
    tenant_id_env: str = "TEAMS_TENANT_ID"
    service_url: str = "https://smba.trafficmanager.net/teams/"
    alerts_channel: str | None = None

    def is_on(self, env: Mapping[str, str]) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(env.get(self.app_id_env))


class WebReviewer(Section):
    password_hash: str
    name: str | None = None


class OidcConfig(Section):
    """`web.oidc`: sign-in through the organization's identity provider (OpenID Connect,
    authorization code with PKCE). The reviewer is `web:<value of identity_claim>`."""

    issuer: str
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    identity_claim: str = Field(default="email", min_length=1)

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        # OpenID Connect Discovery: the issuer is an https URL without query or fragment;
        # plain http only on this machine, for trying it out.
        if not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback)
        ):
            raise ValueError(f"{value!r} is not an https URL (http only for 127.0.0.1)")
        if parts.query or parts.fragment:
            raise ValueError("the issuer URL has no query or fragment")
        return value

    @field_validator("client_secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include openid")
        return value


class WebConfig(Section):
    reviewers: dict[str, WebReviewer] = Field(default_factory=dict)
    oidc: OidcConfig | None = None
    session_ttl: Duration = Field(default=timedelta(hours=12))

    @field_validator("session_ttl")
    @classmethod
    def _sensible_ttl(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=30):
            raise ValueError("must be between 1m and 30d")
        return value


class EscalationBand(Section):
    low: float = Field(default=0.05, ge=0, le=1)
    high: float = Field(default=0.40, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> EscalationBand:
        if self.low > self.high:
            raise ValueError("low must not be above high")
        return self


class RubberStampConfig(Section):
    """A reviewer approving at least `approval_rate` of at least `min_decisions` decisions
    with a median time to decide under `median_under` is flagged (the seed's month-6 slide)."""

    approval_rate: float = Field(default=0.98, gt=0, le=1)
    median_under: Duration = Field(default=timedelta(seconds=5))
    min_decisions: int = Field(default=20, ge=1)


class CanaryConfig(Section):
    """Attention checks: synthetic items whose right answer is known, mixed into a queue."""

    enabled: bool = False
    rate: float = Field(default=0.02, gt=0, le=0.5)
    tiers: list[str] | None = None
    agent: str | None = None

    def policy(self) -> CanaryPolicy | None:
        """The engine's canary policy, or None while attention checks are off."""
        if not self.enabled:
            return None
        return CanaryPolicy(rate=self.rate, tiers=frozenset(self.tiers or ()), agent=self.agent)


class OversightConfig(Section):
    evaluate_every: Duration = Field(default=timedelta(minutes=1))
    window: Duration = Field(default=timedelta(hours=24))
    min_sample: int = Field(default=10, ge=1)
    escalation_rate: EscalationBand = Field(default_factory=EscalationBand)
    time_to_escalate: Duration = Field(default=timedelta(seconds=60))
    override_rise: float = Field(default=0.10, gt=0, le=1)
    queue_growth: float = Field(default=0.5, gt=0)
    rubber_stamp: RubberStampConfig = Field(default_factory=RubberStampConfig)
    canaries: CanaryConfig = Field(default_factory=CanaryConfig)
    # What an hour of a reviewer costs, in the agents' currency: one figure for every tier,
    # or one per tier (a tier left out costs nothing). Unset: reviewer time in hours only.
    reviewer_hourly_cost: float | dict[str, float] | None = None

    @field_validator("reviewer_hourly_cost", mode="before")
    @classmethod
    def _hourly_costs(cls, value: Any) -> Any:
        # Checked by hand: a union's own errors would name its members, not the key.
        def rate(number: Any, where: str) -> float:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"{where}must be a number (an hourly cost), not {number!r}")
            if not 0 <= number < float("inf"):
                raise ValueError(f"{where}must be zero or more, not {number!r}")
            return float(number)

        if value is None:
            return None
        if isinstance(value, dict):
            return {str(k): rate(v, f"{k}: ") for k, v in value.items()}
        return rate(value, "")

    def hourly_cost(self, tier: str | None) -> float | None:
        """The hourly cost of a reviewer at `tier`; None when none is configured."""
        rate = self.reviewer_hourly_cost
        if rate is None or isinstance(rate, float | int):
            return None if rate is None else float(rate)
        return rate.get(tier or "", 0.0)

    def thresholds(self) -> Thresholds:
        return Thresholds(
            escalation_low=self.escalation_rate.low,
            escalation_high=self.escalation_rate.high,
            time_to_escalate=self.time_to_escalate.total_seconds(),
            override_rise=self.override_rise,
            queue_growth=self.queue_growth,
            rubber_stamp_rate=self.rubber_stamp.approval_rate,
            rubber_stamp_seconds=self.rubber_stamp.median_under.total_seconds(),
            rubber_stamp_min_votes=self.rubber_stamp.min_decisions,
            min_sample=self.min_sample,
        )


class BatchConfig(Section):
    """Batch review: same-kind items waiting at one tier share one card once `min_items` of
    them wait. 0 (the default) keeps one card per item."""

    min_items: int = Field(default=0, ge=0)
    max_items: int = Field(default=20, ge=2, le=50)

    @field_validator("min_items")
    @classmethod
    def _off_or_a_group(cls, value: int) -> int:
        if value == 1:
            raise ValueError("must be 0 (off) or at least 2: one item is not a batch")
        return value

    @property
    def enabled(self) -> bool:
        return self.min_items >= 2


class QueueConfig(Section):
    """Queue cards (`bot.engine.queue_cards`): once `after` of a tier's own cards wait to go
    out to one chat channel, that channel gets one card listing what waits at the tier, at
    most `max_items` of it. 0 turns them off."""

    after: int = Field(default=5, ge=0)
    max_items: int = Field(default=200, ge=1, le=1000)


class PersonConfig(Section):
    """One human and the accounts they review with (`people:`)."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = Field(default="", max_length=200)
    identities: list[str] = Field(min_length=1)

    @field_validator("identities")
    @classmethod
    def _identities(cls, value: list[str]) -> list[str]:
        for identity in value:
            check_identity(identity)
        return value


DEFAULT_PREPARE_MARGIN = 0.2


class PredictionConfig(Section):
    """The escalation model (bot.oversight.predict): off, shadow (scores are stored and
    shown, nothing else changes) or active (`predicted_escalation` reaches the rules, and
    a score above `threshold` escalates with reason `predicted_escalation`)."""

    mode: Literal["off", "shadow", "active"] = "off"
    threshold: float = Field(default=0.7, gt=0, lt=1)
    # Active: a request that proceeds with a score within this margin under the threshold is
    # prepared (its review card posted ahead of time) and flagged "likely to need you".
    # Left out: 0.2, or half the threshold when that is less; 0 prepares nothing.
    prepare_margin: float = Field(default=DEFAULT_PREPARE_MARGIN, ge=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _default_margin(cls, data: Any) -> Any:
        # A low threshold set alone must not fail on a margin nobody wrote.
        if isinstance(data, Mapping) and "prepare_margin" not in data:
            threshold = data.get("threshold")
            if isinstance(threshold, int | float) and not isinstance(threshold, bool):
                return {**data, "prepare_margin": min(DEFAULT_PREPARE_MARGIN, threshold / 2)}
        return data

    @model_validator(mode="after")
    def _margin_below_threshold(self) -> PredictionConfig:
        if self.prepare_margin >= self.threshold:
            raise ValueError(
                f"prepare_margin ({self.prepare_margin}) must be below threshold "
                f"({self.threshold}), or every scored request would be prepared"
            )
        return self

    @property
    def prepare_above(self) -> float | None:
        """Where the prepared band starts (active mode with a margin), else None."""
        if self.mode != "active" or self.prepare_margin == 0:
            return None
        # Rounded: 0.7 - 0.2 is 0.49999999999999994 in binary, shown to people as is.
        return round(self.threshold - self.prepare_margin, 9)

    @property
    def likely_at(self) -> float | None:
        """Reviewers see an item flagged "likely to need you" above this score: the prepared
        band's start in active mode, the threshold in shadow mode; None when off."""
        if self.mode == "off":
            return None
        prepared = self.prepare_above
        return self.threshold if prepared is None else prepared


class OutboxLanes(Section):
    webhooks: int = Field(default=16, ge=1, le=1000)
    cards: int = Field(default=12, ge=1, le=1000)
    alerts: int = Field(default=2, ge=1, le=1000)


class DisplayConfig(Section):
    """How reviewer views write money, numbers and times (Babel locale, IANA time zone)."""

    locale: str = "en_US"
    timezone: str = "UTC"

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError):
            raise ValueError(f"{value!r} is not a locale Babel knows (e.g. en_US, de_DE)") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)"
            ) from None
        return value


class OutboxConfig(Section):
    """How many deliveries one replica runs at once (bot.core.lanes.OutboxCaps)."""

    max_in_flight: int = Field(default=32, ge=1, le=1000)
    per_destination: int = Field(default=4, ge=1, le=1000)
    lanes: OutboxLanes = Field(default_factory=OutboxLanes)

    def caps(self) -> OutboxCaps:
        return OutboxCaps(
            max_in_flight=self.max_in_flight,
            per_destination=self.per_destination,
            lanes={
                "webhooks": self.lanes.webhooks,
                "cards": self.lanes.cards,
                "alerts": self.lanes.alerts,
            },
        )

    @model_validator(mode="after")
    def _no_lane_starves(self) -> OutboxConfig:
        problem = self.caps().problem()
        if problem is not None:
            raise ValueError(problem)
        return self


class AuditConfig(Section):
    """Signed checkpoints of the audit chain (docs/audit.md); off while `checkpoints` is unset."""

    checkpoints: str | None = None
    checkpoint_every: Duration = Field(default=timedelta(minutes=1))

    @field_validator("checkpoints")
    @classmethod
    def _sink_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
                return value
            if parts.scheme == "s3" and parts.netloc:
                return value
            raise ValueError("must be file:///ABSOLUTE/DIRECTORY or s3://BUCKET/PREFIX")
        return value

    @field_validator("checkpoint_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value
