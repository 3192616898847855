"""Votes: the one entry for a click, the vote itself, batch votes and reviewers' queues."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.core.answers import check_answer, read_answer
from bot.core.domain import (
    ApprovalRequest,
    Ballot,
    BatchItemResult,
    Change,
    OutboxKind,
    OutboxMessage,
    Status,
    Verdict,
    new_id,
)
from bot.core.errors import (
    InvalidInput,
    NotAllowed,
    NotFound,
)
from bot.core.jsondepth import MAX_DEPTH, value_depth
from bot.core.wording import payload_changes
from bot.engine import transitions
from bot.engine._core import (
    INBOX_BATCH,
    MAX_BATCH_VOTES,
    EngineCore,
    _BatchVote,
)
from routing import (
    Risk,
)


class VoteOps(EngineCore):
    """Reviewers' verdicts, one by one or from a batch card."""

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
        cast = transitions.Cast(
            reviewer,
            name or reviewer,
            verdict,
            (rationale or "").strip(),
            channel,
            modified_payload,
            response,
        )
        return await self._vote(request_id, cast, answer=answer)

    async def _vote(
        self,
        request_id: str,
        cast: transitions.Cast,
        *,
        batch: _BatchVote | None = None,
        answer: str | None = None,
    ) -> ApprovalRequest:
        verdict = cast.verdict

        async def attempt() -> ApprovalRequest:
            request = await self.get(request_id)
            if batch is not None:
                # Checked on the very read the vote is decided on, so an item that escalated
                # or was decided since the card was drawn is refused, never half-recorded.
                batch.check(request)
            self.check_vote(request, cast.reviewer, verdict)
            if verdict not in (Verdict.CONFIRM, Verdict.REVERSE) and await self._agent_stopped(
                request.agent_id
            ):
                raise NotAllowed(
                    "agent_stopped",
                    f"agent stopped: agent {request.agent_id} is stopped, so its requests "
                    "take no more votes",
                )
            if self.rationale_required(request, verdict) and not cast.rationale:
                raise InvalidInput(
                    "rationale",
                    f"a rationale is required to {verdict.value} "
                    + ("a high-risk item" if request.risk is Risk.HIGH else "an item"),
                )
            payload = cast.modified_payload
            if verdict is Verdict.MODIFY and not isinstance(payload, Mapping):
                raise InvalidInput(
                    "modified_payload", "modify needs the edited payload as a JSON object"
                )
            if verdict is Verdict.MODIFY and value_depth(payload) > MAX_DEPTH:
                raise InvalidInput(
                    "modified_payload",
                    f"the edited payload nests deeper than the limit of {MAX_DEPTH} levels",
                )
            given = cast
            if verdict is Verdict.RESPOND and answer is not None and cast.response is None:
                given = dataclasses.replace(
                    cast, response=read_answer(request.response_schema, answer)
                )
            elif verdict is Verdict.RESPOND:
                check_answer(request.response_schema, cast.response)
            return await self._record_vote(
                request,
                given,
                self.clock.now(),
                batch_id=batch.batch_id if batch is not None else None,
            )

        result = await self._retrying(attempt)
        self.metrics.verdicts.labels(verdict=verdict.value, channel=cast.channel).inc()
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
        cast = transitions.Cast(reviewer, name or reviewer, verdict, rationale, channel)
        for request_id in unique:
            try:
                updated = await self._vote(request_id, cast, batch=guard)
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
        cast: transitions.Cast,
        now: datetime,
        *,
        batch_id: str | None = None,
    ) -> ApprovalRequest:
        before = request.current_action
        reviewer, verdict, rationale, channel = (
            cast.reviewer,
            cast.verdict,
            cast.rationale,
            cast.channel,
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
                name=cast.name,
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

    async def pending_for(self, reviewer: str, limit: int = 200) -> list[ApprovalRequest]:
        """Items awaiting a verdict that `reviewer` may act on, oldest deadline first."""
        awaiting = await self.repo.list_awaiting(limit=max(limit * 4, 500))
        return [r for r in awaiting if self.may_act(reviewer, r)][:limit]
