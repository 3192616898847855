"""What the engine reads of a submission (`signoff_client.submission.Submission`, the one
declaration of its fields): the action as the domain holds it, and routing's input."""

from __future__ import annotations

from bot.core.domain import Action, routing_input_of
from routing import RoutingInput
from signoff_client.submission import Submission


def submitted_action(new: Submission) -> Action:
    return Action(new.action.kind, new.action.summary, new.action.payload)


def routing_input(
    new: Submission, request_id: str, agent_id: str, *, agent_stopped: bool = False
) -> RoutingInput:
    """What routing sees of a submission."""
    return routing_input_of(
        new,
        request_id=request_id,
        agent_id=agent_id,
        context=new.context.model_dump(),
        agent_stopped=agent_stopped,
    )
