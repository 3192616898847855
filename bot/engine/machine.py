"""The approval state machine (CONTRACT section 6).

Every public method reads the request, derives the next state as values, and writes it with
its outbox rows and audit events through ONE `Repository.apply`. When another writer got
there first (VersionConflict), it reads again and decides again, so two reviewers clicking
at the same moment produce exactly one verdict and one refusal.
"""

from __future__ import annotations

from bot.engine._agents import AgentOps
from bot.engine._core import (
    AGENT_STATE_TTL,
    SWEEP_BATCH,
    Submitted,
    body_digest,
)
from bot.engine._submit import SubmitOps
from bot.engine._time import TimeOps
from bot.engine._votes import VoteOps

__all__ = [
    "AGENT_STATE_TTL",
    "SWEEP_BATCH",
    "Engine",
    "Submitted",
    "body_digest",
]


class Engine(SubmitOps, VoteOps, AgentOps, TimeOps):
    """Routes submissions and moves requests through votes, tiers and timeouts.

    The operations live in one module per group (`_submit`, `_votes`, `_agents`, `_time`)
    over `EngineCore` (`_core`): the ports, the policy and the rows a transition writes.
    Pure decisions (who may vote, what a vote does) are in `bot.engine.transitions`.
    """
