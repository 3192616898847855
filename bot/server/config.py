"""Configuration: the YAML file of CONTRACT section 3, validated, with environment overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from adapters.resume.spec import RESUME_KINDS, WebhookResume
from bot.core.domain import AgentSpec
from bot.core.errors import ConfigError
from bot.core.people import People, Person, identity_problem
from bot.core.wording import Wording
from bot.server._config_sections import DEFAULT_PREPARE_MARGIN as DEFAULT_PREPARE_MARGIN
from bot.server._config_sections import AgentConfig as AgentConfig
from bot.server._config_sections import AuditConfig as AuditConfig
from bot.server._config_sections import BatchConfig as BatchConfig
from bot.server._config_sections import CanaryConfig as CanaryConfig
from bot.server._config_sections import DisplayConfig as DisplayConfig
from bot.server._config_sections import EscalationBand as EscalationBand
from bot.server._config_sections import OidcConfig as OidcConfig
from bot.server._config_sections import OutboxConfig as OutboxConfig
from bot.server._config_sections import OutboxLanes as OutboxLanes
from bot.server._config_sections import OversightConfig as OversightConfig
from bot.server._config_sections import PersonConfig as PersonConfig
from bot.server._config_sections import PredictionConfig as PredictionConfig
from bot.server._config_sections import QueueConfig as QueueConfig
from bot.server._config_sections import RubberStampConfig as RubberStampConfig
from bot.server._config_sections import Section
from bot.server._config_sections import SlackConfig as SlackConfig
from bot.server._config_sections import SlackCredentials as SlackCredentials
from bot.server._config_sections import TeamsConfig as TeamsConfig
from bot.server._config_sections import WebConfig as WebConfig
from bot.server._config_sections import WebReviewer as WebReviewer
from routing import DEFAULT_TIERS, Policy, PolicyError, RoutingPolicy, TierSpec, compile_policy

DEMO_AGENT = "demo"


class Settings(Section):
    database_url: str = "sqlite:///./signoff.db"
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    agents: list[AgentConfig] | None = None
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    tiers: list[TierSpec] = Field(default_factory=lambda: list(DEFAULT_TIERS))
    slack: SlackConfig = Field(default_factory=SlackConfig)
    teams: TeamsConfig = Field(default_factory=TeamsConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    oversight: OversightConfig = Field(default_factory=OversightConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    people: list[PersonConfig] = Field(default_factory=list)
    prediction: PredictionConfig = Field(default_factory=PredictionConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, value: list[AgentConfig] | None) -> list[AgentConfig] | None:
        seen: set[str] = set()
        for agent in value or []:
            if agent.id in seen:
                raise ValueError(f"agent id {agent.id!r} appears twice")
            seen.add(agent.id)
        return value

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        # Links on cards must reach this server: without a public_url, use where it listens.
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            object.__setattr__(self, "public_url", f"http://{host}:{self.port}")
        return self

    def wording(self, policy: Policy) -> Wording:
        """The words of reviewer views and webhooks in the configured locale and zone."""
        return Wording(policy, self.display.locale, self.display.timezone)

    @property
    def embedded(self) -> bool:
        """No agents configured: run the demo agent whose key is printed at start-up."""
        return self.agents is None

    def directory(self) -> People:
        """Who is who (`people:`), for every rule that counts people."""
        return People.of(Person(p.id, p.name or p.id, tuple(p.identities)) for p in self.people)

    def agent_specs(self) -> dict[str, AgentSpec]:
        agents = self.agents if self.agents is not None else [AgentConfig(id=DEMO_AGENT)]
        return {a.id: a.spec() for a in agents}


class LoadedConfig:
    """Validated settings together with the compiled policy."""

    def __init__(self, settings: Settings, policy: Policy, source: str | None) -> None:
        self.settings = settings
        self.policy = policy
        self.source = source


def format_loc(loc: Sequence[int | str]) -> str:
    """Turn pydantic's ('tiers', 1, 'sla') into the contract's `tiers[1].sla`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _validation_error(exc: ValidationError) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and "[" in p)]
        # A tagged union puts its tag in the path (agents[0].resume.restate.ingress).
        loc = [p for i, p in enumerate(loc) if not (p in RESUME_KINDS and loc[i - 1] == "resume")]
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append((format_loc(loc), message))
    first_path, first_problem = problems[0]
    if len(problems) > 1:
        rest = "; ".join(f"{p}: {m}" for p, m in problems[1:])
        first_problem = f"{first_problem} (also {rest})"
    return ConfigError(first_path, first_problem)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    overrides = {
        "SIGNOFF_DATABASE_URL": "database_url",
        "SIGNOFF_HOST": "host",
        "SIGNOFF_PORT": "port",
        "SIGNOFF_PUBLIC_URL": "public_url",
    }
    merged = dict(data)
    for var, key in overrides.items():
        if env.get(var):
            merged[key] = env[var]
    return merged


def parse_config(
    data: Mapping[str, Any] | None, env: Mapping[str, str] | None = None, source: str | None = None
) -> LoadedConfig:
    """Validate a config mapping (from YAML) with environment overrides.

    Raises ConfigError naming the key path and the problem.
    """
    env = os.environ if env is None else env
    raw = dict(data or {})
    try:
        settings = Settings.model_validate(_apply_env(raw, env))
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    try:
        prediction = settings.prediction
        policy = compile_policy(
            settings.routing,
            settings.tiers,
            predicted_escalation_above=prediction.threshold
            if prediction.mode == "active"
            else None,
            prepare_above=prediction.prepare_above,
        )
    except PolicyError as exc:
        raise ConfigError(exc.path, exc.problem) from exc
    _check_cross_references(settings, policy)
    _check_web_secrets(settings, env)
    return LoadedConfig(settings, policy, source)


def _check_web_secrets(settings: Settings, env: Mapping[str, str]) -> None:
    oidc = settings.web.oidc
    if oidc is not None and oidc.client_secret_env and not env.get(oidc.client_secret_env):
        raise ConfigError(
            "web.oidc.client_secret_env",
            f"the environment variable {oidc.client_secret_env} is not set",
        )


def _check_people(settings: Settings) -> None:
    """An identity belongs to one person, listed once; person ids are unique; every tier
    reviewer is `platform:id` (routing keeps reviewers as plain strings)."""
    for t_index, tier in enumerate(settings.tiers):
        for r_index, reviewer in enumerate(tier.reviewers):
            problem = identity_problem(reviewer)
            if problem is not None:
                raise ConfigError(f"tiers[{t_index}].reviewers[{r_index}]", problem)
    seen: dict[str, str] = {}
    ids: dict[str, int] = {}
    for p_index, person in enumerate(settings.people):
        if person.id in ids:
            raise ConfigError(
                f"people[{p_index}].id",
                f"person id {person.id!r} appears twice (also people[{ids[person.id]}])",
            )
        ids[person.id] = p_index
        for i_index, identity in enumerate(person.identities):
            path = f"people[{p_index}].identities[{i_index}]"
            if identity in seen:
                raise ConfigError(
                    path, f"identity {identity!r} is already listed at {seen[identity]}"
                )
            seen[identity] = path


def _check_cross_references(settings: Settings, policy: Policy) -> None:
    _check_people(settings)
    for index, agent in enumerate(settings.agents or []):
        if agent.callback_url and not agent.webhook_secret_env:
            raise ConfigError(
                f"agents[{index}].webhook_secret_env",
                "required when callback_url is set: webhooks are always signed",
            )
        if agent.key_sha256 is None:
            raise ConfigError(
                f"agents[{index}].key_sha256", "required: `signoff keys new` prints one"
            )
        if agent.resume is not None and not isinstance(agent.resume, WebhookResume):
            for key in ("callback_url", "callback_prefixes", "webhook_secret_env"):
                if getattr(agent, key) is not None:
                    raise ConfigError(
                        f"agents[{index}].{key}",
                        f"only used by resume kind webhook, not {agent.resume.kind}",
                    )
            if agent.resume.kind == "step_functions" and find_spec("boto3") is None:
                raise ConfigError(
                    f"agents[{index}].resume.kind",
                    "step_functions needs boto3: pip install 'signoff[aws]'",
                )
            if agent.resume.kind == "temporal" and find_spec("temporalio") is None:
                raise ConfigError(
                    f"agents[{index}].resume.kind",
                    "temporal needs temporalio: pip install 'signoff[temporal]'",
                )
    tier_names = {tier.name for tier in settings.tiers}
    canaries = settings.oversight.canaries
    for index, name in enumerate(canaries.tiers or []):
        if name not in tier_names:
            raise ConfigError(f"oversight.canaries.tiers[{index}]", f"no tier named {name!r}")
    rates = settings.oversight.reviewer_hourly_cost
    for name in rates if isinstance(rates, dict) else ():
        if name not in tier_names:
            raise ConfigError(f"oversight.reviewer_hourly_cost.{name}", f"no tier named {name!r}")
    agent_ids = set(settings.agent_specs())
    if canaries.agent is not None and canaries.agent not in agent_ids:
        raise ConfigError("oversight.canaries.agent", f"no agent named {canaries.agent!r}")
    del policy


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Load from `path`, else $SIGNOFF_CONFIG, else the embedded default.

    Raises ConfigError for unreadable files, YAML syntax and every validation problem.
    """
    env = os.environ if env is None else env
    path = path or env.get("SIGNOFF_CONFIG") or None
    if path is None:
        return parse_config({}, env)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{path} is not valid YAML{where}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping of sections, not {type(data).__name__}")
    return parse_config(data, env, source=str(path))
