"""Pick each delivery's resume target by its agent's `resume.kind`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from adapters.resume.azure_durable import AzureDurableResumeTarget
from adapters.resume.langgraph_server import LangGraphServerResumeTarget
from adapters.resume.restate import RestateResumeTarget
from adapters.resume.spec import RESUME_KINDS
from adapters.resume.step_functions import StepFunctionsResumeTarget
from adapters.resume.temporal import TemporalResumeTarget
from adapters.resume.webhook import WebhookResumeTarget
from bot.core.ports import DeliveryAttempt, ResumeTarget, WebhookDelivery


class PerAgentResumeTarget:
    """A `ResumeTarget` that hands each delivery to the target its agent is configured for.

    Deliveries without `resume` (the default) go to the signed webhook; others to the
    LangGraph Server, Restate, Step Functions, Temporal or Azure Durable Functions target,
    each made on first use. `targets` replaces any of them (tests); `env` is where the
    targets read the variables the config
    names. The outbox keeps calling one `deliver`, so every kind gets the same retries.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        targets: Mapping[str, ResumeTarget] | None = None,
    ) -> None:
        self._factories: dict[str, Callable[[], ResumeTarget]] = {
            "webhook": WebhookResumeTarget,
            "langgraph_server": lambda: LangGraphServerResumeTarget(env=env),
            "restate": lambda: RestateResumeTarget(env=env),
            "step_functions": StepFunctionsResumeTarget,
            "temporal": lambda: TemporalResumeTarget(env=env),
            "azure_durable": lambda: AzureDurableResumeTarget(env=env),
        }
        self._targets: dict[str, ResumeTarget] = dict(targets or {})
        self._made: list[ResumeTarget] = []

    def target(self, kind: str) -> ResumeTarget | None:
        if kind not in self._targets and kind in RESUME_KINDS:
            made = self._factories[kind]()
            self._made.append(made)
            self._targets[kind] = made
        return self._targets.get(kind)

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """Deliver through the agent's target; an unknown kind is a dead delivery."""
        kind = str((delivery.resume or {}).get("kind", "webhook"))
        target = self.target(kind)
        if target is None:
            return DeliveryAttempt(ok=False, gone=True, error=f"unknown resume kind {kind!r}")
        return await target.deliver(delivery)

    async def aclose(self) -> None:
        """Close the HTTP clients of the targets made here."""
        made = self._made
        self._made = []
        for target in made:
            close = getattr(target, "aclose", None)
            if close is not None:
                await close()
