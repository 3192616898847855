"""What agents and operators change: cancel, outcomes, the stop button, standing approvals."""

from __future__ import annotations

import dataclasses

from bot.core.domain import (
    AgentState,
    ApprovalRequest,
    AuditEvent,
    Change,
    Status,
    isoformat,
)
from bot.core.errors import (
    Conflict,
    NotAllowed,
    NotFound,
)
from bot.core.learning import (
    GrantRequest,
    StandingApproval,
)
from bot.engine import standing, transitions
from bot.engine._core import (
    EngineCore,
)


class AgentOps(EngineCore):
    """Changes that come from the agent side or from operators."""

    async def cancel(self, agent_id: str, request_id: str) -> ApprovalRequest:
        """Cancel a pending request of this agent. Raises NotFound, Conflict (not pending)."""

        async def attempt() -> ApprovalRequest:
            request = await self.get_for_agent(agent_id, request_id)
            if request.status is not Status.PENDING:
                raise Conflict(
                    "not_pending", f"request {request_id} is {request.status.value}, not pending"
                )
            now = self.clock.now()
            updated = transitions.finish(request, Status.CANCELLED, now)
            outbox, events = self._resolution(
                updated, now, actor=f"agent:{agent_id}", channel="api"
            )
            events.insert(0, self._event("cancelled", updated, now, actor=f"agent:{agent_id}"))
            await self.repo.apply(
                Change(
                    request=updated,
                    expected_version=request.version,
                    outbox=tuple(outbox),
                    audit=tuple(events),
                )
            )
            return dataclasses.replace(updated, version=request.version + 1)

        result = await self._retrying(attempt)
        self._committed(result.id)
        return result

    async def record_outcome(
        self, agent_id: str, request_id: str, correct: bool, note: str | None
    ) -> ApprovalRequest:
        """Store the agent's ground truth for this request (used by precision/recall)."""

        async def attempt() -> ApprovalRequest:
            request = await self.get_for_agent(agent_id, request_id)
            now = self.clock.now()
            outcome = {"correct": correct, "note": note, "at": isoformat(now)}
            updated = dataclasses.replace(request, outcome=outcome, updated_at=now)
            event = self._event(
                "outcome", updated, now, actor=f"agent:{agent_id}", reason=note, correct=correct
            )
            await self.repo.apply(
                Change(request=updated, expected_version=request.version, audit=(event,))
            )
            return dataclasses.replace(updated, version=request.version + 1)

        return await self._retrying(attempt)

    async def set_stopped(
        self, agent_id: str, stopped: bool, *, actor: str, reason: str, channel: str
    ) -> AgentState:
        """The stop button: while stopped every new request of the agent is rejected."""
        if agent_id not in self.agents:
            raise NotFound(f"no agent {agent_id}")
        now = self.clock.now()
        state = AgentState(agent_id, stopped, reason, actor, now)
        event = AuditEvent(
            event="stopped" if stopped else "started",
            at=now,
            actor=actor,
            channel=channel,
            reason=reason or None,
            data={"agent_id": agent_id},
        )
        await self.repo.apply(Change(agent_state=state, audit=(event,)))
        self.agent_states.put(agent_id, state)
        if self._on_agent_change is not None:
            self._on_agent_change(agent_id)
        if stopped:
            await self._reject_waiting(agent_id, actor=actor, channel=channel)
        return state

    def check_stop_authority(self, reviewer: str) -> None:
        """Only reviewers of the top tier may press the stop button from a chat or the inbox."""
        if not self.policy.is_top_tier_reviewer(reviewer):
            raise NotAllowed(
                "not_top_tier",
                f"only reviewers of tier {self.policy.top_tier} may stop or start agents",
            )

    def check_standing(self, ask: GrantRequest) -> None:
        """Raise NotAllowed, NotFound or InvalidInput unless the grant may be made as asked."""
        standing.check_grant(ask, self.policy, self.agents)

    async def grant_standing(self, ask: GrantRequest, *, channel: str) -> StandingApproval:
        """Store a standing approval with its audit event; raises as `check_standing`."""
        made = await standing.grant(
            self.repo, self.policy, self.agents, ask, self.clock.now(), channel=channel
        )
        self._standing_changed()
        return made

    async def revoke_standing(self, grant_id: str, by: str, *, channel: str) -> StandingApproval:
        """End a grant now; raises NotFound (unknown or already revoked), NotAllowed."""
        revoked = await standing.revoke(
            self.repo, grant_id, by, self.clock.now(), channel=channel, policy=self.policy
        )
        self._standing_changed()
        return revoked

    def _standing_changed(self) -> None:
        self.standing_grants.forget()
        if self._on_standing_change is not None:
            self._on_standing_change()
