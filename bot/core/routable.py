"""What routing reads of a submission or a stored request, and the one builder of its input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from routing import RoutingInput


class _ActionFields(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


class Routable(Protocol):
    """What routing reads of a submission or of a stored request (both have these)."""

    @property
    def action(self) -> _ActionFields: ...
    @property
    def confidence(self) -> float: ...
    @property
    def amount(self) -> float: ...
    @property
    def currency(self) -> str: ...
    @property
    def reversible(self) -> bool: ...
    @property
    def domain(self) -> str: ...
    @property
    def sentiment(self) -> float: ...
    @property
    def labels(self) -> Mapping[str, Any]: ...


def routing_input_of(
    source: Routable,
    *,
    request_id: str,
    agent_id: str,
    context: Mapping[str, Any],
    agent_stopped: bool = False,
) -> RoutingInput:
    """The one builder of routing's input, from a submission (`bot.engine.submissions`) or
    a stored request (`ApprovalRequest.routing_input`)."""
    return RoutingInput(
        request_id=request_id,
        agent_id=agent_id,
        action_kind=source.action.kind,
        action_summary=source.action.summary,
        action_payload=source.action.payload,
        confidence=source.confidence,
        amount=source.amount,
        currency=source.currency,
        reversible=source.reversible,
        domain=source.domain,
        sentiment=source.sentiment,
        labels=source.labels,
        context=context,
        agent_stopped=agent_stopped,
    )
