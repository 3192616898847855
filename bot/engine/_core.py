"""The engine's shared state and helpers: ports, policy, the stop-state cache, card targets,
outbox rows and audit events. Each group of the engine's operations is a class of its own
module built on `EngineCore`; `Engine` (bot.engine.machine) joins them."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bot.core.domain import (
    POLICY_ACTOR,
    STOPPED_REASON,
    AgentSpec,
    AgentState,
    ApprovalRequest,
    AuditEvent,
    CardRef,
    Change,
    OutboxKind,
    OutboxMessage,
    Status,
    batch_blocker,
    canonical_json,
    new_id,
    sha256_hex,
)
from bot.core.errors import (
    NotAllowed,
    NotFound,
    VersionConflict,
)
from bot.core.escalation import measured_channels
from bot.core.groups import ReviewerGroups
from bot.core.learning import Predictor, StandingApproval
from bot.core.people import People
from bot.core.ports import Clock, InlineChannel, Repository
from bot.core.views import CardViews
from bot.core.wording import Wording
from bot.engine import transitions
from bot.engine.canaries import CanaryPolicy
from bot.engine.fresh import Fresh
from bot.engine.metrics import Metrics
from bot.engine.posted import card_posted, observe_escalation
from bot.engine.wire import webhook_body
from routing import (
    Lane,
    Policy,
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
class Submitted:
    response: Mapping[str, Any]
    created: bool


class EngineCore:
    """What every group of operations shares: the ports, the policy, the words, the
    cached stop states, and the rows a transition writes besides the request."""

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
        on_standing_change: Callable[[], None] | None = None,
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
        self._on_standing_change = on_standing_change
        self._monotonic = monotonic
        self.agent_states: Fresh[str, AgentState | None] = Fresh(
            self._read_agent_state, ttl=AGENT_STATE_TTL, monotonic=self._now_monotonic
        )
        # Keyed by (agent, action kind): the grants active when read. A use is still counted
        # (and refused when revoked, expired or used up) in the submit's own transaction, so
        # an old copy can only send a request to a person, never approve one.
        self.standing_grants: Fresh[tuple[str, str], Sequence[StandingApproval]] = Fresh(
            self._read_grants, ttl=AGENT_STATE_TTL, monotonic=self._now_monotonic
        )

    def _now_monotonic(self) -> float:
        # Looked up on each call: tests replace `_monotonic` on a built engine.
        return self._monotonic()

    async def _read_agent_state(self, agent_id: str) -> AgentState | None:
        return await self.repo.agent_state(agent_id)

    async def _read_grants(self, key: tuple[str, str]) -> Sequence[StandingApproval]:
        agent_id, kind = key
        return await self.repo.standing_approvals(
            agent_id=agent_id, kind=kind, active_at=self.clock.now()
        )

    @property
    def agent_state_ttl(self) -> float:
        """Seconds a replica trusts its copy of an agent's stop state and grants."""
        return self.agent_states.ttl

    @agent_state_ttl.setter
    def agent_state_ttl(self, seconds: float) -> None:
        self.agent_states.ttl = seconds
        self.standing_grants.ttl = seconds

    def _committed(self, request_id: str | None, outbox: bool = True) -> None:
        """Tell waiters (and, through the notifier, other replicas) what just committed;
        `outbox` says whether the change queued outbox rows the workers should look at."""
        if self._on_commit is not None:
            self._on_commit(request_id, outbox)

    async def _agent_stopped(self, agent_id: str) -> bool:
        state = await self.agent_states.get(agent_id)
        return bool(state and state.stopped)

    def forget_agent_state(self, agent_id: str) -> None:
        """Drop the cached stop state of `agent_id` ("" drops all): another replica changed it
        (the `agent` notification), or notifications may have been lost (empty payload)."""
        self.agent_states.forget(agent_id or None)

    def forget_standing(self, payload: str = "") -> None:
        """Drop the cached standing approvals: one was granted or revoked on another replica
        (the `standing` notification), or notifications may have been lost."""
        self.standing_grants.forget()

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
            card, event = card_posted(
                request,
                channel=channel,
                tier=tier,
                target=target,
                ref=ref,
                now=now,
                measured=channel in measured,
            )
            cards.append(card)
            events.append(event)
        return outbox, cards, events

    def _observe_inline_posts(self, request: ApprovalRequest, cards: Sequence[CardRef]) -> None:
        # As the outbox worker does for the first tier's cards: submit -> card posted, in
        # the channels that have reviewers of the tier (bot.escalation).
        if cards and len(request.history) <= 1:
            now = self.clock.now()
            for card in cards:
                measured = measured_channels(
                    self.policy.tier(card.tier), (c for c, _ in self.targets(card.tier))
                )
                if card.channel in measured:
                    observe_escalation(self.metrics, request, card.channel, now)

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

    async def _reject_after_stops(self) -> None:
        """Catch what a stop's own pass missed: a replica whose cached stop state was up to
        AGENT_STATE_TTL old may have stored a pending request just after that pass."""
        for agent_id in self.agents:
            if not await self._agent_stopped(agent_id):
                continue
            state = await self.repo.agent_state(agent_id)
            if state is not None and state.stopped:
                await self._reject_waiting(agent_id, actor=state.by, channel=POLICY_ACTOR)


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
