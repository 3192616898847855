"""`SlackApp`: Slack interactivity on slack-bolt's AsyncApp (buttons, modals, `/signoff`).

Every interaction is acknowledged first and worked on after (bolt with
`process_before_response=False`): a click answers Slack in milliseconds, then reads the
request, refuses with an ephemeral message or opens a modal while the trigger id is fresh,
and only then records the vote. The engine is the only judge of what is allowed; this
module translates Slack payloads to `ReviewService` calls and its refusals to messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.slack import _slash, batch_cards, similar_modal
from adapters.slack._blocks import (
    ALLOW_SIMILAR,
    DETAILS,
    MODIFIED_PAYLOAD,
    RATIONALE,
    REJECT_OPTION,
    RESPONSE,
    VERDICT_ACTIONS,
    VERDICT_CALLBACK,
)
from adapters.slack._payloads import (
    CHANNEL,
    Actor,
    actor_of,
    channel_from_external_id,
    channel_of,
    input_value,
    modal_external_id,
    parse_metadata,
    parse_payload,
    sentence,
)
from adapters.slack.cards import HOME_SHOWN, home_view
from adapters.slack.modals import details_modal, verdict_modal
from bot.core.domain import ApprovalRequest, Verdict, batch_blocker
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.ports import ReviewService
from bot.core.similar import approve_and_allow, prefilled
from bot.core.similar import read as read_similar
from bot.core.views import CardView

log = logging.getLogger("signoff.slack")

COMMAND = "/signoff"
_SEEN_LIMIT = 10_000
# The App Homes this process has drawn, and the items each shows (refreshed on change).
_HOMES_LIMIT = 5_000


# The verdict modal's blocks, by the field a refused vote names.
_FORM_FIELDS = {
    "rationale": RATIONALE,
    "modified_payload": MODIFIED_PAYLOAD,
    "response": RESPONSE,
}


class SlackApp:
    """Serves `POST /slack/events`: signed block actions, view submissions, `/signoff` and
    the App Home tab (`app_home_opened`).

    `review` returns the ReviewService (the engine) at call time, so the app can be built
    before the services are. `inbox_url(request_id)` links to the web inbox; `views(request)`
    draws a request at its own tier with the words of its card (bot.core.views.CardViews).
    Without a `signing_secret` (Socket Mode only, see `SlackSocketMode`) every HTTP request
    is refused, since none can be verified.
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        signing_secret: str | None,
        review: Callable[[], ReviewService],
        inbox_url: Callable[[str], str | None] = lambda _request_id: None,
        views: Callable[[ApprovalRequest], CardView] | None = None,
    ) -> None:
        self.client = client
        self._review = review
        self._inbox_url = inbox_url
        self._views = views or self._bare_view
        self._homes: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._stale_homes: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._warned_unsigned = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.bolt = AsyncApp(
            client=client,
            # Never None: bolt would fall back to SLACK_SIGNING_SECRET in os.environ. Its
            # own check is off: `handle` verifies once, before de-duplicating retries, and
            # Socket Mode envelopes carry no signature to check.
            signing_secret=signing_secret or "",
            request_verification_enabled=False,
            process_before_response=False,
            logger=logging.getLogger("signoff.slack.bolt"),
        )
        for action_id in (*VERDICT_ACTIONS, DETAILS, ALLOW_SIMILAR):
            self.bolt.action(action_id)(self._on_click)
        self.bolt.view(VERDICT_CALLBACK)(self._on_verdict)
        self.bolt.view(similar_modal.CALLBACK)(self._on_allow_similar)
        for action_id in batch_cards.BATCH_VERDICTS:
            self.bolt.action(action_id)(self._on_batch_click)
        # Ticking a box is an interaction too: acknowledged, nothing to do until a button.
        self.bolt.action(batch_cards.BATCH_PICK)(self._on_pick)
        self.bolt.view(batch_cards.BATCH_CALLBACK)(self._on_batch_verdict)
        self.bolt.command(COMMAND)(self._on_command)
        self.bolt.event("app_home_opened")(self._on_home_opened)
        self._handler = AsyncSlackRequestHandler(self.bolt)

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Verify, de-duplicate Slack's retries, and hand the request to bolt.

        Bad or stale (> 5 min) signatures get 401 before anything is read or changed.
        """
        body = await request.body()
        stamp = request.headers.get("x-slack-request-timestamp", "")
        if self._verifier is None:
            if not self._warned_unsigned:
                self._warned_unsigned = True
                log.warning(
                    "POST /slack/events refused: no signing secret is set, so Slack's "
                    "requests cannot be verified (interactions arrive over Socket Mode)"
                )
            return JSONResponse({"error": "invalid request"}, status_code=401)
        if not stamp.isdigit() or not self._verifier.is_valid_request(body, request.headers):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        # Slack retries a delivery it thinks went unanswered with the same body and an
        # X-Slack-Retry-Num header; the first one is (being) handled, so answer and stop.
        digest = hashlib.sha256(body).hexdigest()
        if request.headers.get("x-slack-retry-num") and digest in self._seen:
            log.info("Slack retry %s ignored", request.headers["x-slack-retry-num"])
            return Response(status_code=200)
        self.first_delivery(digest)
        response = await self._handler.handle(request)
        if response.status_code >= 500:
            self.forget_delivery(digest)  # it failed before its ack: let a retry through
        return response

    def first_delivery(self, key: str) -> bool:
        """Remember a delivery (a body digest, a Socket Mode envelope id); False when it was
        seen before, i.e. it is Slack's retry of something (being) handled."""
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    def forget_delivery(self, key: str) -> None:
        """Let Slack's next retry of `key` through: the first try failed before its ack."""
        self._seen.pop(key, None)

    async def idle(self) -> None:
        """Wait until no interaction is being worked on (after its ack)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Let interactions in flight finish (up to 10 s) so shutdown cuts no vote in half."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.idle()

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        self._hold()
        try:
            yield
        finally:
            self._release()

    def _hold(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _release(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    # -- listeners (bolt injects arguments by name) ----------------------------------------

    async def _on_click(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        with self._working():
            await ack()
            try:
                await self._click(body)
            except Exception:
                log.exception("Slack click failed")

    async def _on_verdict(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        with self._working():
            try:
                await self._submit(ack, body)
            except Exception:
                log.exception("Slack verdict submission failed")
                if ack.response is None:
                    await ack()

    async def _on_allow_similar(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        with self._working():
            try:
                await self._allow_similar(ack, body)
            except Exception:
                log.exception("Slack allow-similar submission failed")
                if ack.response is None:
                    await ack()

    async def _on_pick(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_batch_click(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        with self._working():
            await ack()
            try:
                await self._batch_click(body)
            except Exception:
                log.exception("Slack batch click failed")

    async def _on_batch_verdict(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        with self._working():
            try:
                await self._batch_submit(ack, body)
            except Exception:
                log.exception("Slack batch verdict submission failed")
                if ack.response is None:
                    await ack()

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") not in (None, "home") or not event.get("user"):
            return
        with self._working():
            try:
                await self.publish_home(str(event["user"]))
            except Exception:
                log.exception("Slack App Home failed")

    async def _on_command(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond | None
    ) -> None:
        with self._working():
            await ack()
            try:
                await _slash.answer(body, respond, self._review(), self._views)
            except Exception:
                log.exception("Slack /signoff failed")

    # -- what they do ----------------------------------------------------------------------

    async def _click(self, body: Mapping[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        action_id = str(action.get("action_id") or "")
        request_id = str(action.get("value") or "")
        actor, channel = actor_of(body), channel_of(body)
        trigger_id = body.get("trigger_id")
        review = self._review()
        try:
            if action_id == DETAILS:
                request = await review.get(request_id)
                modal = details_modal(self._views(request))
                await self._open(actor, channel, trigger_id, modal)
                return
            # Approve + allow similar is an approval first: refused on the click as one.
            verdict = VERDICT_ACTIONS.get(action_id, Verdict.APPROVE)
            ballot = await review.prepare_vote(request_id, actor.reviewer, verdict)
        except NotFound:
            await self._tell(actor, channel, "🚫 Not recorded. This request no longer exists.")
            return
        except NotAllowed as exc:
            await self._tell(actor, channel, f"🚫 Not recorded. {sentence(exc.message)}")
            return
        if action_id == ALLOW_SIMILAR:
            modal = similar_modal.modal(
                ballot.request,
                prefilled(ballot.request),
                external_id=modal_external_id(channel, trigger_id),
            )
            await self._open(actor, channel, trigger_id, modal)
            return
        if ballot.needs_form:
            modal = verdict_modal(
                ballot.request,
                ballot.verdict,
                inbox_url=self._link(request_id),
                external_id=modal_external_id(channel, trigger_id),
            )
            await self._open(actor, channel, trigger_id, modal)
            return
        await self._vote(actor, channel, request_id, ballot.verdict)

    async def _submit(self, ack: AsyncAck, body: Mapping[str, Any]) -> None:
        view = body.get("view") or {}
        meta = parse_metadata(view)
        if meta is None:
            await ack(
                response_action="errors",
                errors={RATIONALE: "This form is out of date: use the card's button again."},
            )
            return
        request_id, verdict = meta
        actor = actor_of(body)
        rationale = input_value(view, RATIONALE).strip()
        picked = input_value(view, REJECT_OPTION).strip()
        if picked:
            rationale = f"{picked}: {rationale}" if rationale else picked
        payload: dict[str, Any] | None = None
        if verdict is Verdict.MODIFY:
            payload, problem = parse_payload(input_value(view, MODIFIED_PAYLOAD))
            if problem:
                await ack(response_action="errors", errors={MODIFIED_PAYLOAD: problem})
                return
        answer = input_value(view, RESPONSE) if verdict is Verdict.RESPOND else None
        channel = channel_from_external_id(view)
        # The vote checks the rationale and reads the answer on the one read it is decided
        # on; what it refuses for a field of this form is shown under that field.
        refusal = await self._vote(
            actor, channel, request_id, verdict, rationale, payload, answer, ack=ack
        )
        if refusal is not None:
            field, problem = refusal
            await ack(response_action="errors", errors={field: problem})

    async def _allow_similar(self, ack: AsyncAck, body: Mapping[str, Any]) -> None:
        """Approve and grant (bot.core.similar.approve_and_allow). Nothing is recorded unless
        both may be: a bad field is shown under it, a refusal on top of the form."""
        view = body.get("view") or {}
        meta = similar_modal.parse_metadata(view)
        if meta is None:
            await ack(response_action="errors", errors={similar_modal.REASON: similar_modal.STALE})
            return
        request_id, max_risk = meta
        actor, channel = actor_of(body), channel_from_external_id(view)
        form = read_similar(similar_modal.submitted(view, max_risk))
        review = self._review()
        try:
            grant = await approve_and_allow(
                review, request_id, form, actor.reviewer, channel=CHANNEL, name=actor.name
            )
            if grant is None:
                errors = similar_modal.errors(form)
                if errors:
                    await ack(response_action="errors", errors=errors)
                    return
                request = await review.get(request_id)
                redrawn = similar_modal.modal(request, form, external_id=view.get("external_id"))
                await ack(response_action="update", view=redrawn)
                return
        except NotFound:
            await ack()
            await self._tell(actor, channel, "🚫 Not recorded. This request no longer exists.")
            return
        await ack()

    async def _vote(
        self,
        actor: Actor,
        channel: str | None,
        request_id: str,
        verdict: Verdict,
        rationale: str = "",
        payload: Mapping[str, Any] | None = None,
        answer: str | None = None,
        *,
        ack: AsyncAck | None = None,
    ) -> tuple[str, str] | None:
        """Record the vote and tell the reviewer of a refusal. From a modal (`ack` given),
        a refused field of the form comes back as (block id, message) for the caller to show
        under it, and the modal is acknowledged otherwise."""
        message: str | None = None
        try:
            await self._review().vote(
                request_id,
                actor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=rationale,
                name=actor.name,
                modified_payload=payload,
                answer=answer,
            )
        except NotAllowed as exc:
            message = f"🚫 Not recorded. {sentence(exc.message)}"
        except InvalidInput as exc:
            block = _FORM_FIELDS.get(exc.field)
            if ack is not None and block is not None:
                return block, sentence(exc.problem)
            message = f"🚫 Not recorded. {sentence(exc.problem)}"
        except NotFound:
            message = "🚫 Not recorded. This request no longer exists."
        if ack is not None:
            await ack()
        if message is not None:
            await self._tell(actor, channel, message)
        return None

    async def _batch_click(self, body: Mapping[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        verdict = batch_cards.BATCH_VERDICTS[str(action.get("action_id") or "")]
        batch_id = str(action.get("value") or "")
        actor, channel = actor_of(body), channel_of(body)
        request_ids = batch_cards.selected_ids(body.get("state"))
        if not request_ids:
            await self._tell(
                actor, channel, "🚫 Nothing recorded. Tick the items to decide, then click again."
            )
            return
        review = self._review()
        requests = []
        for request_id in request_ids:
            with contextlib.suppress(NotFound):
                requests.append(await review.get(request_id))
        # Ineligible items (a forged id included) are refused anyway, so they must not
        # turn a plain approval into a form.
        if verdict is not Verdict.APPROVE or any(
            review.rationale_required(r, verdict) for r in requests if batch_blocker(r) is None
        ):
            trigger_id = body.get("trigger_id")
            modal = batch_cards.batch_modal(
                batch_id,
                verdict,
                request_ids,
                requests,
                external_id=modal_external_id(channel, trigger_id),
            )
            await self._open(actor, channel, trigger_id, modal)
            return
        await self._batch_vote(actor, channel, batch_id, verdict, request_ids)

    async def _batch_submit(self, ack: AsyncAck, body: Mapping[str, Any]) -> None:
        view = body.get("view") or {}
        meta = batch_cards.parse_batch_metadata(view)
        if meta is None:
            await ack(
                response_action="errors",
                errors={RATIONALE: "This form is out of date: use the card's button again."},
            )
            return
        batch_id, verdict, request_ids = meta
        rationale = input_value(view, RATIONALE).strip()
        if not rationale:
            await ack(
                response_action="errors",
                errors={RATIONALE: "Please say why: it is recorded on every item's vote."},
            )
            return
        await ack()
        channel = channel_from_external_id(view)
        await self._batch_vote(actor_of(body), channel, batch_id, verdict, request_ids, rationale)

    async def _batch_vote(
        self,
        actor: Actor,
        channel: str | None,
        batch_id: str,
        verdict: Verdict,
        request_ids: list[str],
        rationale: str = "",
    ) -> None:
        review = self._review()
        try:
            results = await review.vote_many(
                request_ids,
                actor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=rationale,
                name=actor.name,
                batch_id=batch_id,
            )
        except InvalidInput as exc:
            await self._tell(actor, channel, f"🚫 Nothing recorded. {sentence(exc.problem)}")
            return
        refused = [r for r in results if not r.recorded]
        if not refused:
            return  # the cards themselves show the votes, as for a single approval
        summaries: dict[str, str] = {}
        for result in refused:
            with contextlib.suppress(NotFound):
                request = await review.get(result.request_id)
                summaries[result.request_id] = request.current_action.summary
        await self._tell(actor, channel, batch_cards.results_text(verdict, results, summaries))

    # -- the App Home ----------------------------------------------------------------------

    async def publish_home(self, user_id: str) -> None:
        """Draw `user_id`'s App Home: the items waiting for them, with their buttons."""
        items = await self._review().pending_for(f"{CHANNEL}:{user_id}")
        views = [self._views(r) for r in items[:HOME_SHOWN]]
        try:
            await self.client.views_publish(user_id=user_id, view=home_view(views, len(items)))
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Slack views.publish for %s failed: %r", user_id, exc)
            return
        self._homes[user_id] = frozenset(v.request.id for v in views)
        self._homes.move_to_end(user_id)
        while len(self._homes) > _HOMES_LIMIT:
            self._homes.popitem(last=False)

    def card_changed(self, request: ApprovalRequest) -> None:
        """A card of `request` was posted or edited: redraw the App Homes it shows on, or
        should now (`SlackChannel.on_change`). Each home is redrawn once for the copies of
        one change, after the change's own work."""
        review = self._review()
        for user_id, shown in list(self._homes.items()):
            enters = request.awaiting_verdict and review.may_act(f"{CHANNEL}:{user_id}", request)
            if (request.id in shown or enters) and user_id not in self._stale_homes:
                self._stale_homes.add(user_id)
                self._hold()  # counted from now, so `idle()` and shutdown wait for it
                task = asyncio.get_running_loop().create_task(self._refresh_home(user_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _refresh_home(self, user_id: str) -> None:
        try:
            await asyncio.sleep(0)  # the change's other copies are drawn meanwhile
            self._stale_homes.discard(user_id)
            await self.publish_home(user_id)
        except Exception:
            log.exception("Slack App Home refresh failed")
        finally:
            self._release()

    # -- talking back ----------------------------------------------------------------------

    def _link(self, request_id: str) -> str | None:
        return self._inbox_url(request_id)

    def _bare_view(self, request: ApprovalRequest) -> CardView:
        """A request drawn without the policy's words (an app built without `views`)."""
        return CardView(
            request=request,
            tier=request.tier or "",
            target=CHANNEL,
            inbox_url=self._inbox_url(request.id),
            reasons=request.reason_texts,
        )

    async def _open(
        self, actor: Actor, channel: str | None, trigger_id: Any, view: dict[str, Any]
    ) -> None:
        try:
            await self.client.views_open(trigger_id=str(trigger_id or ""), view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Slack views.open failed: %r", exc)
            await self._tell(actor, channel, "⚠️ Slack did not open the form in time; click again.")

    async def _tell(self, actor: Actor, channel: str | None, text: str) -> None:
        """An ephemeral message to `actor` in the card's channel (a DM when none is known)."""
        try:
            if channel:
                await self.client.chat_postEphemeral(channel=channel, user=actor.user_id, text=text)
            else:
                await self.client.chat_postMessage(channel=actor.user_id, text=text)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("could not tell %s %r: %r", actor.reviewer, text, exc)
