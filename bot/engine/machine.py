"""The approval state machine (CONTRACT section 6).

Every public method reads the request, derives the next state as values, and writes it with
its outbox rows and audit events through ONE `Repository.apply`. When another writer got
there first (VersionConflict), it reads again and decides again, so two reviewers clicking
at the same moment produce exactly one verdict and one refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from bot.core.answers import check_answer, read_answer
from bot.core.callbacks import check_callback_url
from bot.core.domain import (
    POLICY_ACTOR,
    STOPPED_REASON,
    Action,
    AgentSpec,
    AgentState,
    ApprovalRequest,
    AuditEvent,
    Ballot,
    BatchItemResult,
    CardRef,
    Change,
    IdempotencyRecord,
    OutboxKind,
    OutboxMessage,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
    batch_blocker,
    canonical_json,
    isoformat,
    new_id,
    sha256_hex,
)
from bot.core.errors import (
    Conflict,
    IdempotencyRace,
    InvalidInput,
    NotAllowed,
    NotFound,
    StandingExhausted,
    StorageError,
    VersionConflict,
)
from bot.core.escalation import measured_channels
from bot.core.groups import ReviewerGroups
from bot.core.jsondepth import MAX_DEPTH, value_depth
from bot.core.learning import (
    STANDING_CHANNEL,
    GrantRequest,
    Predictor,
    StandingApproval,
    StandingUse,
)
from bot.core.people import People
from bot.core.ports import Clock, InlineChannel, Repository
from bot.core.views import CardViews
from bot.core.wording import Wording, payload_changes
from bot.engine import standing, transitions
from bot.engine.canaries import CanaryPolicy, template_for
from bot.engine.metrics import Metrics
from bot.engine.standing import covering
from bot.engine.wire import submit_response, webhook_body
from routing import (
    Lane,
    Policy,
    ReviewState,
    Risk,
    RoutingDecision,
    RoutingInput,
    TimeoutAction,
    decide,
    sampled,
)

log = logging.getLogger("signoff.engine")

T = TypeVar("T")

_MAX_RETRIES = 8
# A batch card shows at most 50 items (batch.max_items); a larger list is not from a card.
MAX_BATCH_VOTES = 50
# Overdue items read and written per transaction by the SLA sweep and the reminders.
SWEEP_BATCH = 100
# What a vote's audit event names as its batch when it came from a web inbox group.
INBOX_BATCH = "inbox"
# Seconds a replica trusts its cached copy of an agent's stop state. Another replica's stop
# reaches it sooner through the `agent` notification; this bounds how long a lost
# notification can leave it accepting that agent's requests.
AGENT_STATE_TTL = 1.0


@dataclass(frozen=True)
class NewRequest:
    """An agent's submission, already shape-checked by the HTTP layer."""

    action: Action
    confidence: float
    thread_id: str | None = None
    amount: float = 0.0
    currency: str = ""
    reversible: bool = True
    domain: str = ""
    sentiment: float = 0.0
    requested_by: str | None = None
    callback_url: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None
    question: str | None = None
    response_schema: Mapping[str, Any] | None = None
    reject_options: tuple[str, ...] = ()

    def routing_input(
        self, request_id: str, agent_id: str, *, agent_stopped: bool = False
    ) -> RoutingInput:
        """What routing sees of this submission (the one place it is built from one)."""
        return RoutingInput(
            request_id=request_id,
            agent_id=agent_id,
            action_kind=self.action.kind,
            action_summary=self.action.summary,
            action_payload=self.action.payload,
            confidence=self.confidence,
            amount=self.amount,
            currency=self.currency,
            reversible=self.reversible,
            domain=self.domain,
            sentiment=self.sentiment,
            labels=self.labels,
            context=self.context,
            agent_stopped=agent_stopped,
        )


@dataclass(frozen=True)
class Submitted:
    response: Mapping[str, Any]
    created: bool


class Engine:
    """Routes submissions and moves requests through votes, tiers and timeouts."""

    def __init__(
        self,
        repo: Repository,
        policy: Policy,
        agents: Mapping[str, AgentSpec],
        clock: Clock,
        *,
        channels: frozenset[str] = frozenset({"web"}),
        metrics: Metrics | None = None,
        on_commit: Callable[[str | None, bool], None] | None = None,
        inline_channels: Mapping[str, InlineChannel] | None = None,
        public_url: str = "http://127.0.0.1:8000",
        on_agent_change: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        canaries: CanaryPolicy | None = None,
        people: People | None = None,
        predictor: Predictor | None = None,
        wording: Wording | None = None,
        groups: ReviewerGroups | None = None,
    ) -> None:
        self.repo = repo
        # Members of the user groups that tiers list as reviewers (`slack:S…`).
        self.groups = groups
        # Rule titles and sentences are fixed on each request as it is routed.
        self.wording = wording or Wording(policy)
        self.people = people or People()
        # Scores each submission for the escalation model (prediction mode shadow or active);
        # whether the score routes is the policy's `predicted_escalation_above`.
        self.predictor = predictor
        self.policy = policy
        self.agents = dict(agents)
        self.clock = clock
        # A deadline that passed before this process started passed while the service was
        # down (for the replicas that were up sweep every few seconds): see `_plan_escalation`.
        self.started_at = clock.now()
        self.channels = channels
        self.metrics = metrics or Metrics()
        self._on_commit = on_commit
        self.canaries = canaries
        self.inline_channels = dict(inline_channels or {})
        self.views = CardViews(policy, public_url, self.wording)
        self._on_agent_change = on_agent_change
        self._monotonic = monotonic
        self.agent_state_ttl = AGENT_STATE_TTL
        self._agent_states: dict[str, tuple[float, AgentState | None]] = {}
        # Bumped by every invalidation, so a read that raced one is not cached.
        self._agent_generation = 0
        # One read per agent at a time: when the copy expires under load, every submit
        # arriving during the read would otherwise start its own.
        self._agent_reads: dict[tuple[str, int], asyncio.Future[AgentState | None]] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _committed(self, request_id: str | None, outbox: bool = True) -> None:
        """Tell waiters (and, through the notifier, other replicas) what just committed;
        `outbox` says whether the change queued outbox rows the workers should look at."""
        if self._on_commit is not None:
            self._on_commit(request_id, outbox)

    async def _agent_stopped(self, agent_id: str) -> bool:
        cached = self._agent_states.get(agent_id)
        now = self._monotonic()
        if cached is not None and now - cached[0] < self.agent_state_ttl:
            return bool(cached[1] and cached[1].stopped)
        key = (agent_id, self._agent_generation)
        reading = self._agent_reads.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_agent_state(agent_id, now))
            self._agent_reads[key] = reading
            reading.add_done_callback(lambda _: self._agent_reads.pop(key, None))
        state = await asyncio.shield(reading)
        return bool(state and state.stopped)

    async def _read_agent_state(self, agent_id: str, started: float) -> AgentState | None:
        generation = self._agent_generation
        state = await self.repo.agent_state(agent_id)
        # Stamped with the time before the read: a stop committed during it must not be
        # cached for longer than the TTL promises. A read that an invalidation overtook is
        # not cached at all (and callers after the invalidation started a new one).
        if generation == self._agent_generation:
            self._agent_states[agent_id] = (started, state)
        return state

    def forget_agent_state(self, agent_id: str) -> None:
        """Drop the cached stop state of `agent_id` ("" drops all): another replica changed it
        (the `agent` notification), or notifications may have been lost (empty payload)."""
        self._agent_generation += 1
        if agent_id:
            self._agent_states.pop(agent_id, None)
        else:
            self._agent_states.clear()

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for _ in range(_MAX_RETRIES):
            try:
                return await attempt()
            except VersionConflict:
                continue
        return await attempt()

    def targets(self, tier_name: str) -> list[tuple[str, str]]:
        """(channel, target) pairs a tier's card goes to: its chat channels, direct messages
        to its named chat reviewers (`notify: dm | both`, targets `dm:<id>`), the web inbox.

        With `notify: dm`, a platform whose reviewers are none of them named keeps its
        channel card, so an item never goes unseen there.
        """
        tier = self.policy.tier(tier_name)
        # A user group's members get a message each; the group itself is only mentioned.
        people = self.groups.expand(tier.reviewers) if self.groups else tier.reviewers
        found: list[tuple[str, str]] = []
        for platform, channel in (("slack", tier.slack_channel), ("teams", tier.teams_channel)):
            if platform not in self.channels:
                continue
            direct = [
                f"dm:{r.split(':', 1)[1]}"
                for r in people
                if tier.notify != "channel" and r.startswith(f"{platform}:")
            ]
            if channel and (tier.notify != "dm" or not direct):
                found.append((platform, channel))
            found += [(platform, target) for target in direct]
        has_web_reviewer = any(r.startswith("web:") for r in tier.reviewers)
        if "web" in self.channels and (has_web_reviewer or not found):
            found.append(("web", tier.name))
        return found

    def _card_posts(
        self, request: ApprovalRequest, tier: str, now: datetime
    ) -> tuple[list[OutboxMessage], list[CardRef], list[AuditEvent]]:
        """The tier's cards: inline channels' cards (and their `posted` events) for this very
        transaction, and an outbox row for every channel with a remote side effect."""
        outbox: list[OutboxMessage] = []
        cards: list[CardRef] = []
        events: list[AuditEvent] = []
        targets = self.targets(tier)
        measured = measured_channels(self.policy.tier(tier), (c for c, _ in targets))
        for channel, target in targets:
            inline = self.inline_channels.get(channel)
            if inline is None:
                payload: dict[str, Any] = {"channel": channel, "target": target, "tier": tier}
                if channel not in measured:
                    payload["measured"] = False
                outbox.append(
                    OutboxMessage(
                        id=new_id("msg", now),
                        kind=OutboxKind.POST_CARD,
                        request_id=request.id,
                        payload=payload,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
                continue
            ref = inline.card_ref(self.views.view(request, tier, target))
            cards.append(CardRef(request.id, channel, tier, dict(ref), now))
            # The same event the outbox worker records when it posts a card.
            events.append(
                AuditEvent(
                    event="posted",
                    at=now,
                    request_id=request.id,
                    channel=channel,
                    risk=request.risk.value,
                    data={"tier": tier, "target": target, "measured": channel in measured},
                )
            )
        return outbox, cards, events

    def _observe_inline_posts(self, request: ApprovalRequest, cards: Sequence[CardRef]) -> None:
        # As the outbox worker does for the first tier's cards: submit -> card posted, in
        # the channels that have reviewers of the tier (bot.escalation).
        if cards and len(request.history) <= 1:
            elapsed = max((self.clock.now() - request.created_at).total_seconds(), 0.0)
            for card in cards:
                measured = measured_channels(
                    self.policy.tier(card.tier), (c for c, _ in self.targets(card.tier))
                )
                if card.channel in measured:
                    self.metrics.time_to_escalate.labels(channel=card.channel).observe(elapsed)

    def _card_update(self, request: ApprovalRequest, now: datetime) -> OutboxMessage:
        return OutboxMessage(
            id=new_id("msg", now),
            kind=OutboxKind.UPDATE_CARDS,
            request_id=request.id,
            payload={"version": request.version + 1, **self._destination(request.tier)},
            created_at=now,
            next_attempt_at=now,
        )

    def _destination(self, tier: str | None) -> dict[str, str]:
        """Where an edit or reminder of a card at `tier` goes first, for the outbox's cap
        per destination (bot.lanes): the tier's first chat channel, if it has one."""
        if tier is None or tier not in {t.name for t in self.policy.tiers}:
            return {}
        for channel, target in self.targets(tier):
            if channel not in self.inline_channels:
                return {"destination": f"{channel}:{target}"}
        return {}

    def _webhook(
        self, request: ApprovalRequest, event_type: str, now: datetime
    ) -> list[OutboxMessage]:
        agent = self.agents.get(request.agent_id)
        url = request.callback_url or (agent.callback_url if agent else None)
        if not url or request.canary:  # an attention check is never delivered to an agent
            return []
        return [
            OutboxMessage(
                id=new_id("msg", now),
                kind=OutboxKind.WEBHOOK,
                request_id=request.id,
                payload={
                    "url": url,
                    "agent_id": request.agent_id,
                    "body": webhook_body(request, event_type, now),
                },
                created_at=now,
                next_attempt_at=now,
            )
        ]

    def _event(
        self,
        event_name: str,
        request: ApprovalRequest | None,
        now: datetime,
        *,
        actor: str = "system",
        channel: str = "api",
        reason: str | None = None,
        **data: Any,
    ) -> AuditEvent:
        return AuditEvent(
            event=event_name,
            at=now,
            request_id=request.id if request else None,
            actor=actor,
            channel=channel,
            reason=reason,
            risk=request.risk.value if request else None,
            data=data,
        )

    def _resolution(
        self, request: ApprovalRequest, now: datetime, *, actor: str, channel: str
    ) -> tuple[list[OutboxMessage], list[AuditEvent]]:
        """The outbox rows and events every final status brings: card refresh and webhook."""
        outbox = [self._card_update(request, now)]
        outbox += self._webhook(request, "request.resolved", now)
        events = [
            self._event(
                "resolved",
                request,
                now,
                actor=actor,
                channel=channel,
                status=request.status.value,
                action_sha256=request.current_action.sha256,
            )
        ]
        return outbox, events

    def _observe_decision(self, request: ApprovalRequest) -> None:
        if request.lane is Lane.ESCALATE and request.decided_at is not None:
            elapsed = (request.decided_at - request.created_at).total_seconds()
            self.metrics.time_to_decision.observe(max(elapsed, 0.0))

    # -- submit ----------------------------------------------------------------------------

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
        new: NewRequest,
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
        routing_input = new.routing_input(request_id, agent_id, agent_stopped=stopped)
        score = self.predictor.score(routing_input, now) if self.predictor else None
        if score is not None and self.policy.predicted_escalation_above is not None:
            # Active mode only: in shadow mode the score is stored and shown, never routed on.
            routing_input = dataclasses.replace(routing_input, predicted_escalation=score)
        decision = decide(routing_input, self.policy)
        for error in decision.rule_errors:
            log.warning(
                "rule %s failed on %s, escalating: %s", error.rule, request_id, error.message
            )
        status = Status(decision.status)
        tier_spec = self.policy.tier(decision.tier) if decision.tier else None
        pending = status is Status.PENDING
        request = ApprovalRequest(
            id=request_id,
            agent_id=agent_id,
            action=new.action,
            confidence=new.confidence,
            status=status,
            lane=decision.lane,
            risk=decision.risk,
            reasons=tuple(decision.reasons),
            tier=decision.tier,
            approvals_required=decision.approvals_required,
            review=decision.review,
            created_at=now,
            updated_at=now,
            thread_id=new.thread_id,
            amount=new.amount,
            currency=new.currency,
            reversible=new.reversible,
            domain=new.domain,
            sentiment=new.sentiment,
            requested_by=new.requested_by,
            callback_url=new.callback_url,
            labels=dict(new.labels),
            context=dict(new.context),
            review_status=ReviewStatus.OPEN if decision.review is ReviewState.QUEUED else None,
            decided_at=None if pending else now,
            deadline_at=now + tier_spec.sla if pending and tier_spec else None,
            remind_at=now + tier_spec.remind_after
            if pending and tier_spec and tier_spec.remind_after
            else None,
            history=(TierMove(None, decision.tier, now, "start"),) if decision.tier else (),
            predicted_escalation=score,
            cost=new.cost,
            reason_texts=self.wording.explain(decision.reasons, routing_input),
            question=new.question,
            response_schema=new.response_schema,
            reject_options=tuple(new.reject_options),
        )
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
                    continue  # another replica took its last use: the next grant, or a person
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
        grants = await self.repo.standing_approvals(
            agent_id=request.agent_id, kind=request.action.kind, active_at=now
        )
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

    # -- reads -----------------------------------------------------------------------------

    async def get_for_agent(self, agent_id: str, request_id: str) -> ApprovalRequest:
        """Raises NotFound unless the request exists and belongs to `agent_id`."""
        request = await self.repo.get(request_id)
        if request is None or request.agent_id != agent_id or request.canary:
            raise NotFound(f"no request {request_id}")
        return request

    async def get(self, request_id: str) -> ApprovalRequest:
        request = await self.repo.get(request_id)
        if request is None:
            raise NotFound(f"no request {request_id}")
        return request

    # -- votes -----------------------------------------------------------------------------

    def may_act(self, reviewer: str, request: ApprovalRequest) -> bool:
        """Listed at the item's tier or above, in person or as a member of a listed group."""
        if request.tier is None:
            return False
        if self.policy.may_act(reviewer, request.tier):
            return True
        if self.groups is None:
            return False
        above = self.policy.tiers[self.policy.tier_index(request.tier) :]
        return self.groups.admits(reviewer, (r for tier in above for r in tier.reviewers))

    def check_vote(self, request: ApprovalRequest, reviewer: str, verdict: Verdict) -> None:
        """Raise NotAllowed if `reviewer` may not cast `verdict` on `request` now.

        Channels call this before opening a rationale modal, so a refusal comes first.
        """
        agent = self.agents.get(request.agent_id)
        refused = transitions.refusal(
            request,
            transitions.Voter(reviewer, self.may_act(reviewer, request)),
            verdict,
            people=self.people,
            owner=agent.owner if agent else None,
        )
        if refused is not None:
            raise refused

    async def prepare_vote(self, request_id: str, reviewer: str, verdict: Verdict) -> Ballot:
        """The one entry for a click: the request read once and checked, with whether the
        channel must ask for a rationale, an edited payload or an answer before `vote`.

        Raises NotFound, NotAllowed.
        """
        request = await self.get(request_id)
        self.check_vote(request, reviewer, verdict)
        return Ballot(request, verdict, self.rationale_required(request, verdict))

    def rationale_required(self, request: ApprovalRequest, verdict: Verdict) -> bool:
        return transitions.rationale_required(request, verdict)

    async def vote(
        self,
        request_id: str,
        reviewer: str,
        verdict: Verdict,
        *,
        channel: str,
        rationale: str = "",
        name: str | None = None,
        modified_payload: Mapping[str, Any] | None = None,
        response: Any = None,
        answer: str | None = None,
    ) -> ApprovalRequest:
        """Record one reviewer's verdict; returns the request as it now stands.

        `response` is a `respond` verdict's answer as a value, `answer` the same as the
        reviewer typed it (read against the request's `response_schema` on the read the vote
        is decided on, so a channel never reads the request just to parse it). Raises
        NotFound, NotAllowed (with a stable code), InvalidInput (`.field` rationale,
        modified_payload or response: a missing one, or an answer the schema refuses),
        StorageError.
        """
        return await self._vote(
            request_id,
            reviewer,
            verdict,
            channel=channel,
            rationale=rationale,
            name=name,
            modified_payload=modified_payload,
            response=response,
            answer=answer,
        )

    async def _vote(
        self,
        request_id: str,
        reviewer: str,
        verdict: Verdict,
        *,
        channel: str,
        rationale: str = "",
        name: str | None = None,
        modified_payload: Mapping[str, Any] | None = None,
        batch: _BatchVote | None = None,
        response: Any = None,
        answer: str | None = None,
    ) -> ApprovalRequest:
        rationale = (rationale or "").strip()

        async def attempt() -> ApprovalRequest:
            request = await self.get(request_id)
            if batch is not None:
                # Checked on the very read the vote is decided on, so an item that escalated
                # or was decided since the card was drawn is refused, never half-recorded.
                batch.check(request)
            self.check_vote(request, reviewer, verdict)
            if verdict not in (Verdict.CONFIRM, Verdict.REVERSE) and await self._agent_stopped(
                request.agent_id
            ):
                raise NotAllowed(
                    "agent_stopped",
                    f"agent stopped: agent {request.agent_id} is stopped, so its requests "
                    "take no more votes",
                )
            if self.rationale_required(request, verdict) and not rationale:
                raise InvalidInput(
                    "rationale",
                    f"a rationale is required to {verdict.value} "
                    + ("a high-risk item" if request.risk is Risk.HIGH else "an item"),
                )
            if verdict is Verdict.MODIFY and not isinstance(modified_payload, Mapping):
                raise InvalidInput(
                    "modified_payload", "modify needs the edited payload as a JSON object"
                )
            if verdict is Verdict.MODIFY and value_depth(modified_payload) > MAX_DEPTH:
                raise InvalidInput(
                    "modified_payload",
                    f"the edited payload nests deeper than the limit of {MAX_DEPTH} levels",
                )
            given = response
            if verdict is Verdict.RESPOND and answer is not None and response is None:
                given = read_answer(request.response_schema, answer)
            elif verdict is Verdict.RESPOND:
                check_answer(request.response_schema, response)
            now = self.clock.now()
            return await self._record_vote(
                request,
                reviewer,
                verdict,
                rationale,
                name or reviewer,
                channel,
                modified_payload,
                now,
                batch_id=batch.batch_id if batch is not None else None,
                response=given if verdict is Verdict.RESPOND else None,
            )

        result = await self._retrying(attempt)
        self.metrics.verdicts.labels(verdict=verdict.value, channel=channel).inc()
        self._observe_decision(result)
        self._committed(result.id)
        return result

    async def vote_many(
        self,
        request_ids: Sequence[str],
        reviewer: str,
        verdict: Verdict,
        *,
        channel: str,
        rationale: str = "",
        name: str | None = None,
        batch_id: str | None = None,
        tier: str | None = None,
    ) -> list[BatchItemResult]:
        """Record one ordinary vote per selected item of a batch (approve or reject).

        Each item goes through the same rules and transaction as `vote`, with its own audit
        `voted` event naming the batch (`batch_id`, or "inbox" for the web inbox's groups).
        Items that are not batch-eligible (high risk, two-person, not pending, not at the
        card's tier, else `tier`) or that the vote rules refuse are reported with a reason
        and left untouched; the others are recorded all the same. A stored batch card is
        redrawn for everyone afterwards.

        Raises InvalidInput for a verdict other than approve/reject, a reject without a
        rationale, or more than MAX_BATCH_VOTES ids; StorageError.
        """
        if verdict not in (Verdict.APPROVE, Verdict.REJECT):
            raise InvalidInput("verdict", "a batch can only approve or reject")
        rationale = (rationale or "").strip()
        if verdict is Verdict.REJECT and not rationale:
            raise InvalidInput("rationale", "a rationale is required to reject")
        unique = list(dict.fromkeys(str(i) for i in request_ids if i))
        if len(unique) > MAX_BATCH_VOTES:
            raise InvalidInput(
                "request_ids", f"at most {MAX_BATCH_VOTES} items can be decided at once"
            )
        card = await self.repo.batch(batch_id) if batch_id is not None else None
        if batch_id is not None and card is None:
            # A click naming a batch card that was never posted (batch review off, or a
            # forged id): nothing is decided from a card that does not exist.
            return [
                BatchItemResult(i, False, "no_batch", "this batch card does not exist")
                for i in unique
            ]
        # The card's own tier, never one from the click: a stale card cannot reach an item
        # that escalated past it. The web inbox has no stored card and names its tier.
        guard = _BatchVote(card.id if card else INBOX_BATCH, card.tier if card else tier)
        results: list[BatchItemResult] = []
        for request_id in unique:
            try:
                updated = await self._vote(
                    request_id,
                    reviewer,
                    verdict,
                    channel=channel,
                    rationale=rationale,
                    name=name,
                    batch=guard,
                )
            except NotFound:
                results.append(
                    BatchItemResult(request_id, False, "not_found", "this item does not exist")
                )
            except NotAllowed as exc:
                results.append(BatchItemResult(request_id, False, exc.code, exc.message))
            except InvalidInput as exc:
                results.append(BatchItemResult(request_id, False, "invalid", exc.problem))
            else:
                results.append(BatchItemResult(request_id, True, request=updated))
        if card is not None and any(r.recorded for r in results):
            await self.redraw_batch(card.id)
        return results

    async def redraw_batch(self, batch_id: str) -> None:
        """Queue a redraw of a batch card (decided items lose their checkboxes)."""
        now = self.clock.now()
        message = OutboxMessage(
            id=new_id("msg", now),
            kind=OutboxKind.UPDATE_BATCH,
            request_id=None,
            payload={"batch_id": batch_id},
            created_at=now,
            next_attempt_at=now,
        )
        await self.repo.apply(Change(outbox=(message,)))
        self._committed(None)

    async def _record_vote(
        self,
        request: ApprovalRequest,
        reviewer: str,
        verdict: Verdict,
        rationale: str,
        name: str,
        channel: str,
        modified_payload: Mapping[str, Any] | None,
        now: datetime,
        *,
        batch_id: str | None = None,
        response: Any = None,
    ) -> ApprovalRequest:
        before = request.current_action
        cast = transitions.Cast(
            reviewer, name, verdict, rationale, channel, modified_payload, response
        )
        updated, vote = transitions.cast_vote(request, cast, people=self.people, now=now)
        person = vote.person
        target = updated.current_action
        events = [
            self._event(
                "voted",
                updated,
                now,
                actor=reviewer,
                channel=channel,
                reason=rationale or None,
                verdict=verdict.value,
                name=name,
                person=person,
                action_sha256=vote.action_sha256,
                approvals=len(updated.approvals_for_current_action()),
                approvals_required=updated.approvals_required,
                **({"batch": batch_id} if batch_id is not None else {}),
                # What this modify changed, so the audit trail shows old -> new by itself.
                **(
                    {
                        "changes": [
                            c.to_json() for c in payload_changes(before.payload, target.payload)
                        ]
                    }
                    if verdict is Verdict.MODIFY
                    else {}
                ),
            )
        ]
        outbox = [self._card_update(request, now)]
        if verdict is Verdict.REVERSE:
            outbox += self._webhook(updated, "request.reversed", now)
            events.append(
                self._event(
                    "reversed", updated, now, actor=reviewer, channel=channel, reason=rationale
                )
            )
        elif updated.status is not Status.PENDING and request.status is Status.PENDING:
            more_outbox, more_events = self._resolution(
                updated, now, actor=reviewer, channel=channel
            )
            outbox = more_outbox
            events += more_events
        await self.repo.apply(
            Change(
                request=updated,
                expected_version=request.version,
                new_votes=(vote,),
                outbox=tuple(outbox),
                audit=tuple(events),
            )
        )
        return dataclasses.replace(updated, version=request.version + 1)

    # -- agent-side changes ----------------------------------------------------------------

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
        self._agent_generation += 1
        self._agent_states[agent_id] = (self._monotonic(), state)
        if self._on_agent_change is not None:
            self._on_agent_change(agent_id)
        if stopped:
            await self._reject_waiting(agent_id, actor=actor, channel=channel)
        return state

    async def _reject_waiting(self, agent_id: str, *, actor: str, channel: str) -> None:
        """A stop ends what waits: every pending request of the agent ends `rejected`
        (reason agent_stopped), its cards lose their buttons, its webhook is queued."""
        pending: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.repo.list_requests(
                agent_id=agent_id, status=Status.PENDING.value, limit=200, cursor=cursor
            )
            pending += [r.id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        for request_id in pending:
            if await self._retrying(
                functools.partial(self._reject_stopped, request_id, actor, channel)
            ):
                self._committed(request_id)

    async def _reject_stopped(self, request_id: str, actor: str, channel: str) -> bool:
        request = await self.repo.get(request_id)
        if request is None or request.status is not Status.PENDING:
            return False
        now = self.clock.now()
        reasons = request.reasons
        if STOPPED_REASON not in reasons:
            reasons = (*reasons, STOPPED_REASON)
        texts = request.reason_texts
        if texts and STOPPED_REASON not in request.reasons:
            texts = (*texts, *self.wording.explain((STOPPED_REASON,), request.routing_input()))
        updated = transitions.finish(
            dataclasses.replace(request, reasons=reasons, reason_texts=texts),
            Status.REJECTED,
            now,
        )
        outbox, events = self._resolution(updated, now, actor=actor, channel=channel)
        events[0] = dataclasses.replace(events[0], reason=STOPPED_REASON)
        await self.repo.apply(
            Change(
                request=updated,
                expected_version=request.version,
                outbox=tuple(outbox),
                audit=tuple(events),
            )
        )
        self._observe_decision(updated)
        return True

    async def pending_for(self, reviewer: str, limit: int = 200) -> list[ApprovalRequest]:
        """Items awaiting a verdict that `reviewer` may act on, oldest deadline first."""
        awaiting = await self.repo.list_awaiting(limit=max(limit * 4, 500))
        return [r for r in awaiting if self.may_act(reviewer, r)][:limit]

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
        return await standing.grant(
            self.repo, self.policy, self.agents, ask, self.clock.now(), channel=channel
        )

    async def revoke_standing(self, grant_id: str, by: str, *, channel: str) -> StandingApproval:
        """End a grant now; raises NotFound (unknown or already revoked), NotAllowed."""
        return await standing.revoke(
            self.repo, grant_id, by, self.clock.now(), channel=channel, policy=self.policy
        )

    # -- time ------------------------------------------------------------------------------

    async def sweep(self, limit: int = 200) -> int:
        """Move overdue pending items up a tier, or end them per on_timeout. Returns how many.

        Works in batches (`SWEEP_BATCH`): one read for the batch's requests and one
        transaction for all their tier moves, outbox rows and audit events; a change the
        batch refused (another writer got there first) is decided again alone.
        """
        await self._reject_after_stops()
        now = self.clock.now()
        due = list(await self.repo.due_for_sla(now, limit))
        # Every replica sweeps and finds the same overdue ids. Taken in each replica's own
        # order they spread over the batch instead of colliding on every row (a collision
        # is harmless, the version check refuses the second writer, but it is wasted work).
        random.shuffle(due)
        return await self._in_batches(due, self._plan_escalation, self._escalate_one)

    async def _in_batches(
        self,
        ids: Sequence[str],
        plan: Callable[[ApprovalRequest, datetime], _Planned | None],
        alone: Callable[[str], Awaitable[bool]],
    ) -> int:
        """Plan a change for each request of `ids`, write each batch's in one transaction,
        and redo alone (read again, decide again) those the batch refused."""
        done = 0
        for start in range(0, len(ids), SWEEP_BATCH):
            requests = await self.repo.get_many(ids[start : start + SWEEP_BATCH])
            now = self.clock.now()
            planned = [p for p in (plan(r, now) for r in requests) if p is not None]
            outcomes = await self.repo.apply_many([p.change for p in planned])
            for item, outcome in zip(planned, outcomes, strict=True):
                if outcome is None:
                    item.committed()
                    done += 1
                elif await self._retrying(functools.partial(alone, item.request_id)):
                    done += 1
        return done

    async def _reject_after_stops(self) -> None:
        """Catch what a stop's own pass missed: a replica whose cached stop state was up to
        AGENT_STATE_TTL old may have stored a pending request just after that pass."""
        for agent_id in self.agents:
            if not await self._agent_stopped(agent_id):
                continue
            state = await self.repo.agent_state(agent_id)
            if state is not None and state.stopped:
                await self._reject_waiting(agent_id, actor=state.by, channel=POLICY_ACTOR)

    async def _escalate_one(self, request_id: str) -> bool:
        request = await self.repo.get(request_id)
        if request is None:
            return False
        planned = self._plan_escalation(request, self.clock.now())
        if planned is None:
            return False
        await self.repo.apply(planned.change)
        planned.committed()
        return True

    def _plan_escalation(self, request: ApprovalRequest, now: datetime) -> _Planned | None:
        """The change an overdue request's SLA calls for (next tier, on_timeout, or a
        restarted window after downtime); None when it is not overdue (any more)."""
        if (
            request.status is not Status.PENDING
            or request.deadline_at is None
            or request.deadline_at > now
            or request.tier is None
        ):
            return None
        next_tier = self.policy.next_tier(request.tier)
        if next_tier is None and request.deadline_at < self.started_at:
            # The last tier's window ran out while the service was down: its reviewers never
            # had it, so they get it again in full before on_timeout may decide.
            return self._restart_window(request, now)
        if next_tier is not None:
            spec = self.policy.tier(next_tier)
            # A tier's SLA counts from the moment the item reached it: after downtime an
            # overdue item moves one tier and gets that tier's whole window (and reminder),
            # instead of running up the chain to on_timeout in a few sweeps.
            move = TierMove(request.tier, next_tier, now, "sla")
            updated = dataclasses.replace(
                request,
                tier=next_tier,
                deadline_at=now + spec.sla,
                remind_at=now + spec.remind_after if spec.remind_after else None,
                history=(*request.history, move),
                updated_at=now,
            )
            posts, cards, posted = self._card_posts(updated, next_tier, now)
            outbox = [self._card_update(request, now), *posts]
            events = [
                self._event(
                    "escalated",
                    updated,
                    now,
                    reason="sla",
                    from_tier=request.tier,
                    to_tier=next_tier,
                ),
                *posted,
            ]
            change = Change(
                request=updated,
                expected_version=request.version,
                new_moves=(move,),
                outbox=tuple(outbox),
                audit=tuple(events),
                cards=tuple(cards),
            )

            def escalated() -> None:
                self.metrics.escalations.labels(tier=next_tier).inc()
                self._committed(request.id)

            return _Planned(request.id, change, escalated)
        action = self.policy.timeout_action(request.risk)
        status = {
            TimeoutAction.REJECT: Status.REJECTED,
            TimeoutAction.EXPIRE: Status.EXPIRED,
            TimeoutAction.APPROVE: Status.APPROVED,
        }[action]
        updated = request
        new_votes: tuple[Vote, ...] = ()
        if status is Status.APPROVED:
            vote = Vote(
                POLICY_ACTOR,
                "on_timeout policy",
                Verdict.APPROVE,
                "approved by on_timeout policy after the last tier's SLA",
                now,
                POLICY_ACTOR,
                request.current_action.sha256,
            )
            new_votes = (vote,)
            updated = dataclasses.replace(updated, votes=(*updated.votes, vote))
        updated = transitions.finish(updated, status, now)
        outbox, events = self._resolution(updated, now, actor=POLICY_ACTOR, channel=POLICY_ACTOR)
        events.insert(
            0,
            self._event(
                "expired", updated, now, actor=POLICY_ACTOR, reason=f"on_timeout:{action.value}"
            ),
        )
        change = Change(
            request=updated,
            expected_version=request.version,
            new_votes=new_votes,
            outbox=tuple(outbox),
            audit=tuple(events),
        )

        def expired() -> None:
            self._observe_decision(updated)
            self._committed(request.id)

        return _Planned(request.id, change, expired)

    def _restart_window(self, request: ApprovalRequest, now: datetime) -> _Planned:
        assert request.tier is not None and request.deadline_at is not None
        spec = self.policy.tier(request.tier)
        updated = dataclasses.replace(
            request,
            deadline_at=now + spec.sla,
            remind_at=now + spec.remind_after if spec.remind_after else None,
            updated_at=now,
        )
        event = self._event(
            "sla_restarted",
            updated,
            now,
            reason="downtime",
            tier=request.tier,
            missed_deadline=isoformat(request.deadline_at),
        )
        change = Change(request=updated, expected_version=request.version, audit=(event,))
        return _Planned(request.id, change, functools.partial(self._committed, request.id))

    async def remind(self, limit: int = 200) -> int:
        """Queue a reminder for pending items whose tier's remind_after has passed, in
        batches like `sweep`."""
        due = list(await self.repo.due_for_reminder(self.clock.now(), limit))
        return await self._in_batches(due, self._plan_reminder, self._remind_one)

    async def _remind_one(self, request_id: str) -> bool:
        request = await self.repo.get(request_id)
        if request is None:
            return False
        planned = self._plan_reminder(request, self.clock.now())
        if planned is None:
            return False
        await self.repo.apply(planned.change)
        planned.committed()
        return True

    def _plan_reminder(self, request: ApprovalRequest, now: datetime) -> _Planned | None:
        if (
            request.status is not Status.PENDING
            or request.remind_at is None
            or request.remind_at > now
        ):
            return None
        updated = dataclasses.replace(request, remind_at=None, updated_at=now)
        message = OutboxMessage(
            id=new_id("msg", now),
            kind=OutboxKind.REMIND,
            request_id=request.id,
            payload={"tier": request.tier, **self._destination(request.tier)},
            created_at=now,
            next_attempt_at=now,
        )
        event = self._event("reminded", updated, now, tier=request.tier)
        change = Change(
            request=updated,
            expected_version=request.version,
            outbox=(message,),
            audit=(event,),
        )
        return _Planned(request.id, change, functools.partial(self._committed, request.id))


@dataclass(frozen=True)
class _Planned:
    """A change the sweep or the reminders decided, and what follows once it committed."""

    request_id: str
    change: Change
    committed: Callable[[], None]


@dataclass(frozen=True)
class _BatchVote:
    """The extra rule a vote from a batch obeys: only eligible items at the batch's tier."""

    batch_id: str
    tier: str | None

    def check(self, request: ApprovalRequest) -> None:
        """Raise NotAllowed when `request` may not be decided from this batch."""
        blocker = batch_blocker(request)
        if blocker is not None:
            raise NotAllowed(*blocker)
        if self.tier is not None and request.tier != self.tier:
            raise NotAllowed(
                "moved_on", f"this item moved on to tier {request.tier} since the card was drawn"
            )


def body_digest(raw: bytes) -> str:
    """Idempotency compares bodies by their canonical JSON, so key order does not matter."""
    import json

    try:
        return sha256_hex(canonical_json(json.loads(raw)))
    except ValueError:
        return sha256_hex(raw.decode("utf-8", errors="replace"))
