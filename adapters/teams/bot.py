"""`TeamsBot`: what happens when a reviewer clicks a card or writes to Signoff in Teams.

Card clicks arrive as Universal Actions (`invoke` named `adaptiveCard/action`, value
`{"action": {"type": "Action.Execute", "verb", "data": {"request_id", "tier", "rationale",
...inputs}}}`). The clicker is `teams:<from.aadObjectId>`. The answer is always a card in
the invoke response (`application/vnd.microsoft.card.adaptive`), seen by the clicker only:

- a refusal (not a reviewer, self-approval, second vote, already decided) or a missing
  rationale: the current card with the reason in a banner; nothing is recorded;
- a recorded vote: the refreshed card with a short confirmation.

Verb `allow_similar` (Approve + allow similar) approves the item and grants a standing
approval for requests like it (bot.core.similar); a refusal or a bad field leaves both
unrecorded and redraws the card with what was typed.

The engine writes the card refresh for everyone (an `update_activity` of every stored copy)
into the outbox in the vote's own transaction, so the edit survives a restart and is retried
when Teams throttles; the outbox worker runs it at once after the commit.

Clients without Universal Actions send the card's `Action.Submit` fallback as a message
whose `value` carries `verb` and `request_id`; it is handled the same way, answered by a
reply in the thread. Text messages (`@Signoff pending`, `stop AGENT REASON`, `start AGENT`)
mirror Slack's `/signoff` command. `pending` in a reviewer's 1:1 chat with the bot answers
with their queue as a card (`queue_card`) whose buttons are the same verbs; a click on it
(`data.queue`) is answered with the queue redrawn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from botbuilder.core import (
    ActivityHandler,
    CardFactory,
    InvokeResponse,
    MessageFactory,
    TurnContext,
)
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse

from adapters.teams import _elements as elements
from adapters.teams import batch_cards, cards, queue_card
from adapters.teams._turns import closing_connector
from adapters.teams.queue_card import QUEUE, item_input
from bot.core import jsondepth
from bot.core.domain import ApprovalRequest, Status, Verdict
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.ports import ReviewService
from bot.core.similar import SimilarForm, approve_and_allow
from bot.core.similar import read as read_similar
from bot.core.views import BatchView, CardView

log = logging.getLogger("signoff.teams")

CHANNEL = "teams"
ERROR_TYPE = "application/vnd.microsoft.error"
MAX_PENDING_LISTED = 10

ViewFactory = Callable[[ApprovalRequest, str], CardView]
"""Draws the copy of a request's card that belongs to a tier (`view(request, tier)`)."""

BatchViews = Callable[[str], Awaitable[BatchView | None]]
"""Reads a batch card with its members as they stand now (None when there is no such card)."""


@dataclass(frozen=True)
class CardAction:
    """A click, parsed: what the reviewer chose, on which request, with which inputs."""

    verdict: Verdict
    request_id: str
    tier: str | None
    rationale: str
    modified_payload: str | None
    # The typed (or picked) answer of a `respond`, as text.
    response: str = ""
    # Clicked on the personal queue card: the answer is the queue redrawn.
    from_queue: bool = False


def parse_action(verb: Any, data: Any) -> CardAction:
    """Raises InvalidInput when the verb or `data.request_id` is missing or unknown."""
    if not isinstance(data, Mapping):
        raise InvalidInput("data", "must be an object carrying request_id")
    verdict = elements.VERBS.get(str(verb or ""))
    if verdict is None:
        raise InvalidInput("verb", f"{verb!r} is not one of {', '.join(elements.VERBS)}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput("data.request_id", "is required")
    tier = data.get("tier")

    def field(name: str) -> str | None:
        # The queue card names each item's inputs `<name>:<request id>` (queue_card).
        value = data.get(item_input(name, request_id))
        if not isinstance(value, str) or not value.strip():
            value = data.get(name)
        return value if isinstance(value, str) else None

    rationale = (field(elements.RATIONALE) or "").strip()
    picked = (field(elements.REJECT_OPTION) or "").strip()
    if verdict is Verdict.REJECT and picked:
        rationale = f"{picked}: {rationale}" if rationale else picked
    return CardAction(
        verdict=verdict,
        request_id=request_id,
        tier=tier if isinstance(tier, str) and tier else None,
        rationale=rationale,
        modified_payload=field(elements.MODIFIED_PAYLOAD),
        response=field(elements.RESPONSE) or "",
        from_queue=data.get(QUEUE) is True,
    )


@dataclass(frozen=True)
class Answer:
    """The card a clicker gets back, with the message to show on it."""

    view: CardView
    message: str
    tone: elements.Tone
    # The "Approve + allow similar…" form as the clicker typed it, kept on a refusal.
    similar: SimilarForm | None = None


def reviewer_of(activity: Activity) -> tuple[str | None, str | None]:
    """(`teams:<aadObjectId>`, display name) of whoever sent `activity`, if Teams said."""
    sender = activity.from_property
    aad = getattr(sender, "aad_object_id", None) if sender is not None else None
    name = getattr(sender, "name", None) if sender is not None else None
    return (f"teams:{aad}" if aad else None), name


class TeamsBot(ActivityHandler):  # type: ignore[misc]  # botbuilder ships no type hints
    """The bot logic behind `POST /api/messages`; talks to the engine only through
    `ReviewService`, so it never sees storage."""

    def __init__(
        self, reviews: ReviewService, view: ViewFactory, batch_view: BatchViews | None = None
    ) -> None:
        super().__init__()
        self.reviews = reviews
        self.view = view
        self.batch_view = batch_view

    async def on_turn(self, turn_context: TurnContext) -> None:
        async with closing_connector(turn_context):
            await super().on_turn(turn_context)

    # -- card clicks (Universal Actions) -------------------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity: Activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            response: InvokeResponse = await super().on_invoke_activity(turn_context)
            return response
        value = activity.value if isinstance(activity.value, Mapping) else {}
        action = value.get("action")
        if not isinstance(action, Mapping) or action.get("type") != "Action.Execute":
            return _error(HTTPStatus.BAD_REQUEST, "BadRequest", "expected an Action.Execute")
        reviewer, name = reviewer_of(activity)
        verb, data = action.get("verb"), action.get("data")
        if str(verb or "") in batch_cards.BATCH_VERBS:
            return await self._batch_invoke(str(verb), data, reviewer, name)
        if verb == elements.ALLOW_SIMILAR:
            try:
                answer = await self.allow_similar(data, reviewer, name)
            except InvalidInput as exc:
                return _error(HTTPStatus.BAD_REQUEST, "BadRequest", str(exc))
            except NotFound as exc:
                return _error(HTTPStatus.NOT_FOUND, "NotFound", str(exc))
            built = cards.card(
                answer.view, message=answer.message, tone=answer.tone, similar=answer.similar
            )
            return _card_response(built)
        try:
            parsed = parse_action(verb, data)
        except InvalidInput as exc:
            return _error(HTTPStatus.BAD_REQUEST, "BadRequest", str(exc))
        try:
            answer = await self.decide(parsed, reviewer, name)
        except NotFound as exc:
            return _error(HTTPStatus.NOT_FOUND, "NotFound", str(exc))
        if parsed.from_queue and reviewer is not None:
            return _card_response(
                await self.queue(reviewer, message=answer.message, tone=answer.tone)
            )
        return _card_response(cards.card(answer.view, message=answer.message, tone=answer.tone))

    # -- batch cards ---------------------------------------------------------------------

    async def _batch_invoke(
        self, verb: str, data: Any, reviewer: str | None, name: str | None
    ) -> InvokeResponse:
        batch_id = data.get("batch_id") if isinstance(data, Mapping) else None
        if not isinstance(batch_id, str) or not batch_id:
            return _error(HTTPStatus.BAD_REQUEST, "BadRequest", "data.batch_id is required")
        message, tone = await self.decide_batch(verb, batch_id, data, reviewer, name)
        view = await self.batch_view(batch_id) if self.batch_view is not None else None
        if view is None:
            return _error(HTTPStatus.NOT_FOUND, "NotFound", f"no batch card {batch_id}")
        return _card_response(batch_cards.batch_card(view, message=message, tone=tone))

    async def decide_batch(
        self,
        verb: str,
        batch_id: str,
        data: Mapping[str, Any],
        reviewer: str | None,
        name: str | None,
    ) -> tuple[str, elements.Tone]:
        """Record the ticked items of a batch card; returns the clicker's banner."""
        verdict = batch_cards.BATCH_VERBS[verb]
        if reviewer is None:
            return "Not recorded: Teams did not say who you are (no Microsoft Entra object id).", (
                "attention"
            )
        picked = batch_cards.picked_ids(data)
        if not picked:
            return "Not recorded: tick the items to decide, then click again.", "attention"
        rationale = data.get(elements.RATIONALE)
        try:
            results = await self.reviews.vote_many(
                picked,
                reviewer,
                verdict,
                channel=CHANNEL,
                rationale=rationale.strip() if isinstance(rationale, str) else "",
                name=name,
                batch_id=batch_id,
            )
        except InvalidInput as exc:
            hint = (
                " Type it in the Rationale box and click again." if exc.field == "rationale" else ""
            )
            return f"Not recorded: {exc.problem}.{hint}", "attention"
        summaries: dict[str, str] = {}
        for result in results:
            if not result.recorded:
                try:
                    summaries[result.request_id] = (
                        await self.reviews.get(result.request_id)
                    ).current_action.summary
                except NotFound:
                    pass
        return batch_cards.results_message(verdict, results, summaries)

    async def decide(self, action: CardAction, reviewer: str | None, name: str | None) -> Answer:
        """Record one verdict; a refusal reads the request once more to redraw the card.

        The vote itself checks who may vote, the rationale and the answer on the one read it
        is decided on. Raises NotFound for an unknown request.
        """
        verdict = action.verdict

        async def refused(message: str) -> Answer:
            current = await self.reviews.get(action.request_id)
            tier = action.tier or current.tier or ""
            return Answer(self.view(current, tier), message, "attention")

        if reviewer is None:
            return await refused(
                "Not recorded: Teams did not say who you are (no Microsoft Entra object id)."
            )
        payload: Mapping[str, Any] | None = None
        unreadable: str | None = None
        if verdict is Verdict.MODIFY:
            try:
                payload = _payload(action.modified_payload)
            except InvalidInput as exc:
                # Reported only if the vote gets as far as the payload: a missing
                # rationale is said first, as on every other card.
                unreadable = exc.problem
        try:
            updated = await self.reviews.vote(
                action.request_id,
                reviewer,
                verdict,
                channel=CHANNEL,
                rationale=action.rationale,
                name=name,
                modified_payload=payload,
                answer=action.response if verdict is Verdict.RESPOND else None,
            )
        except NotAllowed as exc:
            return await refused(f"Not recorded: {exc.message}.")
        except InvalidInput as exc:
            if exc.field == "modified_payload" and unreadable:
                return await refused(f"Not recorded: {unreadable}.")
            if exc.field != "rationale":
                return await refused(f"Not recorded: {exc.problem}.")
            why = (
                "for every verdict on a high-risk item"
                if verdict in _PLAIN
                else f"to {verdict.value}"
            )
            return await refused(
                f"Not recorded: a rationale is required {why}. "
                "Type it in the Rationale box and click again."
            )
        view = self.view(updated, action.tier or updated.tier or "")
        return Answer(view, _recorded(view, verdict), "good")

    async def allow_similar(self, data: Any, reviewer: str | None, name: str | None) -> Answer:
        """Approve + allow similar (bot.core.similar.approve_and_allow): the item approved
        and a standing approval granted, or nothing recorded and the card redrawn with what
        was typed and why. Raises InvalidInput without `data.request_id`, NotFound for an
        unknown request."""
        if not isinstance(data, Mapping):
            raise InvalidInput("data", "must be an object carrying request_id")
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise InvalidInput("data.request_id", "is required")
        tier = data.get("tier") if isinstance(data.get("tier"), str) else None
        fields = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        form = read_similar(fields)
        grant = None
        if reviewer is None:
            form.refusal = "Teams did not say who you are (no Microsoft Entra object id)."
        else:
            grant = await approve_and_allow(
                self.reviews, request_id, form, reviewer, channel=CHANNEL, name=name
            )
        current = await self.reviews.get(request_id)
        view = self.view(current, tier or current.tier or "")
        if grant is None:
            problems = [form.refusal] if form.refusal else []
            problems += [f"{_SIMILAR_LABELS.get(k, k)}: {p}" for k, p in form.errors.items()]
            return Answer(view, "Not recorded. " + " ".join(problems), "attention", form)
        return Answer(
            view,
            f"Recorded: approved. Requests like it are approved in your name for {form.ttl}, "
            f"at most {grant.max_uses} times (standing approval {grant.id}).",
            "good",
        )

    # -- messages: Action.Submit fallbacks and text commands -----------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity: Activity = turn_context.activity
        if isinstance(activity.value, Mapping) and "verb" in activity.value:
            await turn_context.send_activity(await self._submitted(activity))
            return
        # In a channel the text starts with the bot's own @-mention (`<at>Signoff</at>`).
        text = _MENTION.sub(" ", activity.text or "").strip()
        reviewer, _ = reviewer_of(activity)
        if _is_personal(activity) and reviewer and text.lower().split()[:1] == ["pending"]:
            queue = await self.queue(reviewer)
            reply = MessageFactory.attachment(CardFactory.adaptive_card(queue))
            reply.summary = str(queue["fallbackText"])
            await turn_context.send_activity(reply)
            return
        await turn_context.send_activity(await self.command(text, activity))

    async def _submitted(self, activity: Activity) -> str:
        value: Mapping[str, Any] = activity.value
        verb = str(value.get("verb") or "")
        if verb in batch_cards.BATCH_VERBS and isinstance(value.get("batch_id"), str):
            reviewer, name = reviewer_of(activity)
            message, _ = await self.decide_batch(verb, value["batch_id"], value, reviewer, name)
            return message
        if verb == elements.ALLOW_SIMILAR:
            reviewer, name = reviewer_of(activity)
            try:
                return (await self.allow_similar(value, reviewer, name)).message
            except InvalidInput as exc:
                return f"That click could not be read: {exc}."
            except NotFound as exc:
                return str(exc)
        try:
            parsed = parse_action(value.get("verb"), value)
        except InvalidInput as exc:
            return f"That click could not be read: {exc}."
        reviewer, name = reviewer_of(activity)
        try:
            answer = await self.decide(parsed, reviewer, name)
        except NotFound as exc:
            return str(exc)
        return answer.message

    async def command(self, text: str, activity: Activity) -> str:
        """Run `pending`, `stop AGENT REASON` or `start AGENT [REASON]`; returns the reply."""
        reviewer, _ = reviewer_of(activity)
        words = text.split()
        verb = words[0].lower() if words else ""
        if reviewer is None:
            return "Teams did not say who you are, so Signoff cannot act on this."
        if verb == "pending":
            return await self._pending(reviewer)
        if verb in ("stop", "start") and len(words) >= 2:
            reason = " ".join(words[2:])
            if verb == "stop" and not reason:
                return "Say why: `stop AGENT REASON`."
            return await self._stop(reviewer, words[1], stopped=verb == "stop", reason=reason)
        return (
            # No angle brackets: Teams reads message text as HTML-flavoured markdown.
            "Signoff posts approval cards here. Commands: `pending` (what waits for you), "
            "`stop AGENT REASON` and `start AGENT` (top-tier reviewers)."
        )

    async def queue(
        self, reviewer: str, *, message: str | None = None, tone: elements.Tone = "good"
    ) -> elements.Element:
        """The reviewer's queue card (`pending` in a 1:1 chat), `message` in a banner."""
        waiting = await self.reviews.pending_for(reviewer, limit=200)
        views = [self.view(r, r.tier or "") for r in waiting[: queue_card.MAX_QUEUE_ITEMS]]
        return queue_card.queue_card(views, len(waiting), message=message, tone=tone)

    async def _pending(self, reviewer: str) -> str:
        """The queue as text, for a channel (the card with buttons is for the 1:1 chat)."""
        waiting = await self.reviews.pending_for(reviewer, limit=200)
        if not waiting:
            return "Nothing is waiting for you."
        lines = [f"{len(waiting)} item(s) wait for you:"]
        for request in waiting[:MAX_PENDING_LISTED]:
            view = self.view(request, request.tier or "")
            words = [f"{elements.RISK_ICON[request.risk]} {request.risk.value} risk"]
            if view.amount:
                words.append(view.amount)
            words += [reason.title for reason in view.reasons]
            if view.deadline is not None:
                words.append(f"{view.deadline.consequence} if no one decides in time")
            lines.append(
                f"- {elements.clip(request.current_action.summary, 120)} "
                f"({'; '.join(words)}; {request.id})"
            )
        if len(waiting) > MAX_PENDING_LISTED:
            lines.append(f"… and {len(waiting) - MAX_PENDING_LISTED} more in the web inbox.")
        lines.append("Write pending in a chat with me to decide them there.")
        return "\n".join(lines)

    async def _stop(self, reviewer: str, agent_id: str, *, stopped: bool, reason: str) -> str:
        try:
            self.reviews.check_stop_authority(reviewer)
            await self.reviews.set_stopped(
                agent_id, stopped, actor=reviewer, reason=reason, channel=CHANNEL
            )
        except NotAllowed as exc:
            return f"Not done: {exc.message}."
        except NotFound:
            return f"There is no agent {agent_id!r}."
        if stopped:
            return (
                f"Stopped {agent_id}: its pending requests are rejected, and its new ones "
                f"until `start {agent_id}`."
            )
        return f"Started {agent_id} again."


_SIMILAR_LABELS = {
    "when": "Condition",
    "ttl": "For how long",
    "max_uses": "Uses",
    "reason": "Reason",
    "max_risk": "Risk",
}
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_PLAIN = frozenset({Verdict.APPROVE, Verdict.CONFIRM})


def _payload(text: str | None) -> Mapping[str, Any]:
    if not text or not text.strip():
        raise InvalidInput("modified_payload", "the edited payload is empty")
    try:
        value = jsondepth.loads(text)
    except jsondepth.TooDeep as exc:
        raise InvalidInput(
            "modified_payload",
            f"the edited payload nests too deep: the limit is {exc.limit} levels",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "modified_payload", f"the edited payload is not valid JSON ({exc.msg})"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInput("modified_payload", "the edited payload must be a JSON object")
    return value


def _is_personal(activity: Activity) -> bool:
    """Sent in the reviewer's 1:1 chat with the bot (Teams' `personal` conversation)."""
    conversation = activity.conversation
    return conversation is not None and conversation.conversation_type == "personal"


def _recorded(view: CardView, verdict: Verdict) -> str:
    request = view.request
    if verdict is Verdict.CONFIRM:
        return "Recorded: you confirmed what the agent did."
    if verdict is Verdict.REVERSE:
        return "Recorded: reversed. The agent is told to undo it."
    if request.status is Status.PENDING:
        have = len(request.approvals_for_current_action())
        need = request.approvals_required
        return (
            f"Recorded: your {'changes are' if verdict is Verdict.MODIFY else 'approval is'} "
            f"in ({have} of {need}). {need - have} more approval(s) needed."
        )
    return f"Recorded: {cards.outcome_words(view)[1].lower()}. The agent is told now."


def _card_response(card: Mapping[str, Any]) -> InvokeResponse:
    body = AdaptiveCardInvokeResponse(
        status_code=int(HTTPStatus.OK), type=elements.CONTENT_TYPE, value=card
    )
    return InvokeResponse(status=int(HTTPStatus.OK), body=serializer_helper(body))


def _error(status: HTTPStatus, code: str, message: str) -> InvokeResponse:
    body = AdaptiveCardInvokeResponse(
        status_code=int(status), type=ERROR_TYPE, value={"code": code, "message": message}
    )
    return InvokeResponse(status=int(status), body=serializer_helper(body))
