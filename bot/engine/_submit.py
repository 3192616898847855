"""Submissions: routing a request, standing approvals, attention checks, idempotent replays."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from bot.core.callbacks import check_callback_url
from bot.core.domain import (
    ApprovalRequest,
    AuditEvent,
    CardRef,
    Change,
    IdempotencyRecord,
    OutboxMessage,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
    new_id,
)
from bot.core.errors import (
    Conflict,
    IdempotencyRace,
    InvalidInput,
    StandingExhausted,
    StorageError,
)
from bot.core.learning import (
    STANDING_CHANNEL,
    StandingApproval,
    StandingUse,
)
from bot.engine import transitions
from bot.engine._core import (
    EngineCore,
    Submitted,
    log,
)
from bot.engine.canaries import CanaryPolicy, template_for
from bot.engine.standing import covering
from bot.engine.submissions import routing_input as submission_routing_input
from bot.engine.submissions import submitted_action
from bot.engine.wire import submit_response
from routing import (
    Lane,
    ReviewState,
    RoutingDecision,
    RoutingInput,
    decide,
    sampled,
)
from signoff_client.submission import Submission


class SubmitOps(EngineCore):
    """An agent's submission, from routing to the rows it writes."""

    def check_callback(self, agent_id: str, url: str | None) -> None:
        """Refuse callback URLs that are not well-formed http(s) URLs (bot.callbacks) or do
        not lie under one of the agent's prefixes, compared part by part."""
        if url is None:
            return
        agent = self.agents.get(agent_id)
        try:
            check_callback_url(url, agent.callback_prefixes if agent else ())
        except ValueError as exc:
            raise InvalidInput("callback_url", str(exc)) from exc
        if not agent or not agent.webhook_secret_env:
            raise InvalidInput("callback_url", "this agent has no webhook secret configured")

    async def submit(
        self,
        agent_id: str,
        new: Submission,
        *,
        idempotency_key: str | None = None,
        body_sha256: str | None = None,
    ) -> Submitted:
        """Route and store a submission; returns the contract's response body.

        Raises InvalidInput (bad callback), Conflict (Idempotency-Key reused with another
        body), StorageError.
        """
        if idempotency_key is not None:
            replay = await self._replay(agent_id, idempotency_key, body_sha256)
            if replay is not None:
                return replay
        self.check_callback(agent_id, new.callback_url)
        stopped = await self._agent_stopped(agent_id)
        now = self.clock.now()
        request_id = new_id("req", now)
        routing_input = submission_routing_input(new, request_id, agent_id, agent_stopped=stopped)
        score = self.predictor.score(routing_input, now) if self.predictor else None
        if score is not None and self.policy.predicted_escalation_above is not None:
            # Active mode only: in shadow mode the score is stored and shown, never routed on.
            routing_input = dataclasses.replace(routing_input, predicted_escalation=score)
        decision = decide(routing_input, self.policy)
        for error in decision.rule_errors:
            log.warning(
                "rule %s failed on %s, escalating: %s", error.rule, request_id, error.message
            )
        request = transitions.admit(
            new,
            request_id=request_id,
            agent_id=agent_id,
            action=submitted_action(new),
            decision=decision,
            tier=self.policy.tier(decision.tier) if decision.tier else None,
            now=now,
            predicted_escalation=score,
            reason_texts=self.wording.explain(decision.reasons, routing_input),
        )
        status, pending = request.status, request.status is Status.PENDING
        outbox: list[OutboxMessage] = []
        cards: list[CardRef] = []
        posted: list[AuditEvent] = []
        if decision.tier and decision.needs_card:
            outbox, cards, posted = self._card_posts(request, decision.tier, now)
        # Marked only when true: a card posted because the model scored it near its threshold.
        prepared: dict[str, Any] = {"prepared": True} if decision.prepared else {}
        events = [
            self._event("submitted", request, now, actor=f"agent:{agent_id}", kind=new.action.kind),
            self._event(
                "routed",
                request,
                now,
                reason=",".join(decision.reasons) or None,
                lane=decision.lane.value,
                tier=decision.tier,
                approvals_required=decision.approvals_required,
                review=decision.review.value,
                rule_errors=[e.rule for e in decision.rule_errors],
                **prepared,
            ),
            *posted,
        ]
        if not pending:
            outbox += self._webhook(request, "request.resolved", now)
            events.append(
                self._event(
                    "resolved",
                    request,
                    now,
                    reason="agent_stopped" if status is Status.REJECTED else decision.lane.value,
                    status=status.value,
                    action_sha256=request.current_action.sha256,
                )
            )
        response = submit_response(request)
        record = (
            IdempotencyRecord(
                agent_id, idempotency_key, body_sha256 or "", request_id, response, now
            )
            if idempotency_key is not None
            else None
        )
        change = Change(
            request=request,
            outbox=tuple(outbox),
            audit=tuple(events),
            idempotency=record,
            cards=tuple(cards),
        )
        try:
            for grant in await self._standing_grants(request, routing_input, decision, now):
                standing = self._standing_approved(change, grant, now)
                try:
                    await self.repo.apply(standing)
                except StandingExhausted:
                    # Used up, revoked or expired since it was read (here or on another
                    # replica): the next grant, or a person; and a fresh copy next time.
                    self.standing_grants.forget((request.agent_id, request.action.kind))
                    continue
                change = standing
                break
            else:
                await self.repo.apply(change)
        except IdempotencyRace:
            replay = await self._replay(agent_id, idempotency_key or "", body_sha256)
            if replay is None:
                raise
            return replay
        if change.request is not None and change.request is not request:
            request, outbox, cards = change.request, list(change.outbox), list(change.cards)
            response = submit_response(request, change.standing_use)
            self.metrics.verdicts.labels(verdict="approve", channel=STANDING_CHANNEL).inc()
        self.metrics.requests.labels(lane=request.lane.value, risk=request.risk.value).inc()
        if self.predictor is not None:
            self.predictor.observe(routing_input, decision.lane is Lane.ESCALATE)
        self._observe_inline_posts(request, cards)
        # No one waits on this request yet (its id is in the answer still to be sent), so
        # there is no long-poll to wake, here or on another replica.
        self._committed(None, bool(outbox))
        if self.canaries is not None and self.canaries.follows(request):
            await self._add_canary(request, self.canaries)
        return Submitted(response, True)

    async def _standing_grants(
        self,
        request: ApprovalRequest,
        inp: RoutingInput,
        decision: RoutingDecision,
        now: datetime,
    ) -> list[StandingApproval]:
        """The active standing approvals that would approve this new request, oldest first."""
        if decision.status != "pending" or decision.approvals_required != 1 or request.canary:
            return []
        cached = await self.standing_grants.get((request.agent_id, request.action.kind))
        # The copy may be up to a TTL old: what expired since is left out here; a use that
        # ran out or a revocation since is refused by the submit's own transaction.
        grants = [grant for grant in cached if grant.active_at(now)]
        if not grants:
            return []
        agent = self.agents.get(request.agent_id)
        return covering(
            grants,
            inp,
            decision,
            self.policy,
            requested_by=request.requested_by,
            owner=agent.owner if agent else None,
        )

    def _standing_approved(self, change: Change, grant: StandingApproval, now: datetime) -> Change:
        """`change` (a new pending request) approved by `grant`: the grantor's vote on channel
        `standing`, the webhook, and an after-the-fact review card when sampled."""
        pending = change.request
        assert pending is not None and pending.tier is not None
        vote = Vote(
            grant.grantor,
            grant.grantor,
            Verdict.APPROVE,
            f"standing approval {grant.id}: {grant.reason}",
            now,
            STANDING_CHANNEL,
            pending.action.sha256,
        )
        review = sampled(pending.id, self.policy.routing.review_sample_rate)
        request = dataclasses.replace(
            transitions.finish(dataclasses.replace(pending, votes=(vote,)), Status.APPROVED, now),
            review=ReviewState.QUEUED if review else ReviewState.SAMPLED_OUT,
            review_status=ReviewStatus.OPEN if review else None,
        )
        outbox: list[OutboxMessage] = []
        cards: list[CardRef] = []
        posted: list[AuditEvent] = []
        if review:
            outbox, cards, posted = self._card_posts(request, pending.tier, now)
        outbox += self._webhook(request, "request.resolved", now)
        submitted, routed = change.audit[:2]
        events = [
            submitted,
            routed,
            *posted,
            self._event(
                "voted",
                request,
                now,
                actor=grant.grantor,
                channel=STANDING_CHANNEL,
                reason=vote.rationale,
                verdict=Verdict.APPROVE.value,
                name=grant.grantor,
                action_sha256=vote.action_sha256,
                approvals=1,
                approvals_required=1,
                standing_approval=grant.id,
            ),
            self._event(
                "resolved",
                request,
                now,
                actor=grant.grantor,
                channel=STANDING_CHANNEL,
                reason="standing_approval",
                status=request.status.value,
                action_sha256=request.current_action.sha256,
                standing_approval=grant.id,
            ),
        ]
        use = StandingUse(grant.id, now)
        record = change.idempotency
        if record is not None:
            record = dataclasses.replace(record, response=submit_response(request, use))
        return Change(
            request=request,
            outbox=tuple(outbox),
            audit=tuple(events),
            idempotency=record,
            cards=tuple(cards),
            standing_use=use,
        )

    async def _add_canary(self, real: ApprovalRequest, canaries: CanaryPolicy) -> None:
        """Queue an attention check beside `real`: same tier, risk and approvals, a known
        wrong action. Best effort: the agent's own submit has already succeeded."""
        template = template_for(real.id)
        now = self.clock.now()
        spec = self.policy.tier(real.tier or "")
        canary = dataclasses.replace(
            real,
            id=new_id("req", now),
            agent_id=canaries.agent or real.agent_id,
            action=template.action,
            confidence=template.confidence,
            reasons=("low_confidence",),
            created_at=now,
            updated_at=now,
            thread_id=None,
            amount=template.amount,
            currency=template.currency,
            reversible=True,
            domain="",
            sentiment=0.0,
            requested_by=None,
            callback_url=None,
            labels={},
            context=dict(template.context),
            deadline_at=now + spec.sla,
            remind_at=now + spec.remind_after if spec.remind_after else None,
            history=(TierMove(None, spec.name, now, "start"),),
            votes=(),
            version=0,
            canary=True,
            question=None,
            response_schema=None,
            reject_options=(),
        )
        # Worded like any low-confidence item, so nothing on the card tells it apart.
        canary = dataclasses.replace(
            canary, reason_texts=self.wording.explain(canary.reasons, canary.routing_input())
        )
        events = (
            self._event("submitted", canary, now, actor="signoff", kind=template.action.kind),
            self._event(
                "routed",
                canary,
                now,
                reason="attention_check",
                lane=canary.lane.value,
                tier=canary.tier,
                approvals_required=canary.approvals_required,
                review=canary.review.value,
                canary=True,
            ),
        )
        outbox, cards, posted = self._card_posts(canary, spec.name, now)
        change = Change(
            request=canary, outbox=tuple(outbox), audit=events + tuple(posted), cards=tuple(cards)
        )
        try:
            await self.repo.apply(change)
        except StorageError as exc:
            log.warning("attention check after %s not queued: %s", real.id, exc)
            return
        self._committed(None, bool(outbox))

    async def _replay(self, agent_id: str, key: str, body_sha256: str | None) -> Submitted | None:
        record = await self.repo.find_idempotency(agent_id, key)
        if record is None:
            return None
        if record.body_sha256 != (body_sha256 or ""):
            raise Conflict(
                "idempotency_key_reused",
                f"Idempotency-Key {key!r} was already used with a different body "
                f"(request {record.request_id})",
            )
        return Submitted(record.response, False)
