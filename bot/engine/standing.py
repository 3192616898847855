"""Standing approvals: who may grant one, what it covers, and the grant and revoke changes.

A grant is checked against the policy when it is made (the grantor decides such items at
their start tier; `high` only by a top-tier reviewer who says `allow_high`) and against
each request when it is used (agent, kind, one approval, risk at most `max_risk`, the CEL
condition, and the grantor still entitled and not blocked as requester or owner). The use
itself is counted by the repository in the request's own transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bot.core.domain import AgentSpec, AuditEvent, new_id
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.learning import GrantRequest, StandingApproval
from bot.core.ports import Repository
from routing import (
    CompiledRule,
    Lane,
    Policy,
    Risk,
    RoutingDecision,
    RoutingInput,
    Rule,
    compile_rule,
    predicted_to_escalate,
    rule_variables,
)

log = logging.getLogger("signoff.standing")

MAX_TTL = timedelta(days=30)
MAX_USES = 10_000
_REVIEWER_PREFIXES = ("slack:", "teams:", "web:")


def compile_condition(when: str) -> CompiledRule:
    """Compile a grant's `--when` with the machinery routing rules use.

    Raises InvalidInput naming `when` and the problem (parse error with line and column, or
    an unknown variable).
    """
    return _compiled(when)


@functools.lru_cache(maxsize=256)
def _compiled(when: str) -> CompiledRule:
    # Cached: every escalated submit of the agent and kind evaluates the grant's condition.
    if not when.strip():
        raise InvalidInput("when", "the condition is empty")
    outcome = compile_rule(Rule(name="standing_approval", when=when))
    if isinstance(outcome, str):
        problem = outcome.replace("rule 'standing_approval' ", "the condition ", 1)
        raise InvalidInput("when", problem)
    return outcome


def check_grant(ask: GrantRequest, policy: Policy, agents: Mapping[str, AgentSpec]) -> None:
    """Raise NotAllowed, NotFound or InvalidInput unless the grant may be made as asked."""
    if not ask.grantor.startswith(_REVIEWER_PREFIXES):
        # An agent's key (or anything that is not a reviewer identity) can never grant.
        raise NotAllowed("not_a_reviewer", f"{ask.grantor!r} is not a reviewer identity")
    agent = agents.get(ask.agent_id)
    if agent is None:
        raise NotFound(f"no agent {ask.agent_id}")
    if agent.owner and agent.owner == ask.grantor:
        raise NotAllowed(
            "agent_owner", f"you own agent {ask.agent_id}, so you cannot approve its requests"
        )
    if not ask.kind.strip():
        raise InvalidInput("kind", "name the action kind the grant covers")
    if not ask.reason.strip():
        raise InvalidInput("reason", "a reason is required: it is shown with every use")
    if not timedelta(0) < ask.ttl <= MAX_TTL:
        raise InvalidInput("ttl", "must be above zero and at most 30d")
    if not 1 <= ask.max_uses <= MAX_USES:
        raise InvalidInput("max_uses", f"must be between 1 and {MAX_USES}")
    if ask.when is not None:
        compile_condition(ask.when)
    if ask.max_risk is Risk.HIGH:
        if not ask.allow_high:
            raise NotAllowed(
                "high_risk", "a grant covering high risk needs --allow-high (top tier only)"
            )
        if not policy.is_top_tier_reviewer(ask.grantor):
            raise NotAllowed(
                "not_top_tier",
                f"only reviewers of tier {policy.top_tier} may grant for high-risk items",
            )
    tier = policy.start_tier(ask.max_risk)
    if not policy.may_act(ask.grantor, tier):
        raise NotAllowed(
            "not_a_reviewer",
            f"{ask.grantor} does not decide {ask.max_risk.value}-risk items "
            f"(they start at tier {tier})",
        )


def new_grant(ask: GrantRequest, now: datetime) -> StandingApproval:
    return StandingApproval(
        id=new_id("sa", now),
        grantor=ask.grantor,
        agent_id=ask.agent_id,
        kind=ask.kind.strip(),
        when=ask.when,
        max_risk=ask.max_risk,
        max_uses=ask.max_uses,
        reason=ask.reason.strip(),
        created_at=now,
        expires_at=now + ask.ttl,
    )


async def grant(
    repo: Repository,
    policy: Policy,
    agents: Mapping[str, AgentSpec],
    ask: GrantRequest,
    now: datetime,
    *,
    channel: str,
) -> StandingApproval:
    """Check and store a grant with its `standing_granted` audit event.

    Raises NotAllowed, NotFound, InvalidInput (see `check_grant`), StorageError.
    """
    check_grant(ask, policy, agents)
    made = new_grant(ask, now)
    event = AuditEvent(
        event="standing_granted",
        at=now,
        actor=ask.grantor,
        channel=channel,
        reason=made.reason,
        risk=made.max_risk.value,
        data=made.to_json(),
    )
    await repo.add_standing(made, (event,))
    return made


async def revoke(
    repo: Repository, grant_id: str, by: str, now: datetime, *, channel: str, policy: Policy
) -> StandingApproval:
    """Revoke a grant; its grantor or a top-tier reviewer may.

    Raises NotFound (no such grant, or already revoked), NotAllowed, StorageError.
    """
    found = await repo.standing_approval(grant_id)
    if found is None:
        raise NotFound(f"no standing approval {grant_id}")
    if by != found.grantor and not policy.is_top_tier_reviewer(by):
        raise NotAllowed(
            "not_grantor",
            f"only {found.grantor} or a reviewer of tier {policy.top_tier} may revoke it",
        )
    event = AuditEvent(
        event="standing_revoked",
        at=now,
        actor=by,
        channel=channel,
        data={"standing_approval": grant_id},
    )
    revoked = await repo.revoke_standing(grant_id, by, now, event)
    if revoked is None:
        raise NotFound(f"standing approval {grant_id} is already revoked")
    return revoked


def covering(
    grants: Sequence[StandingApproval],
    inp: RoutingInput,
    decision: RoutingDecision,
    policy: Policy,
    *,
    requested_by: str | None,
    owner: str | None,
) -> list[StandingApproval]:
    """The grants (oldest first) that would approve this routed request.

    Only a pending escalation that one approval decides qualifies; a condition that cannot
    answer (an evaluation error) does not match: a grant never approves by accident. Nor
    does a grant cover a request the active model scores above its threshold: "requests
    like this" are routine ones, and the model says this one is not.
    """
    if decision.status != "pending" or decision.lane is not Lane.ESCALATE:
        return []
    if predicted_to_escalate(inp, policy):
        return []
    if decision.approvals_required != 1 or decision.tier is None:
        return []
    variables = None
    found: list[StandingApproval] = []
    for candidate in grants:
        if candidate.agent_id != inp.agent_id:
            continue
        if candidate.kind != inp.action_kind or decision.risk > candidate.max_risk:
            continue
        grantor = candidate.grantor
        if grantor in (requested_by, owner) or not policy.may_act(grantor, decision.tier):
            continue
        if candidate.when is not None:
            variables = variables if variables is not None else rule_variables(inp)
            try:
                outcome = compile_condition(candidate.when).evaluate(variables)
            except InvalidInput:
                outcome = False
            if outcome is not True:
                if outcome is not False:
                    log.warning("standing approval %s: %s", candidate.id, outcome.message)
                continue
        found.append(candidate)
    return found
