"""One request's page: the first screen, the vote form, answers and standing approvals."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from adapters.web import _item, _payload
from adapters.web._base import (
    CHANNEL,
    SECURITY_HEADERS,
    InboxBase,
    _Visitor,
    _vote_verdict,
    _VoteForm,
)
from bot.core import jsondepth
from bot.core.answers import choices, wants_text
from bot.core.domain import (
    Verdict,
)
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.similar import SimilarForm, approve_and_allow, offered, prefilled
from bot.core.similar import read as read_similar


class ItemPages(InboxBase):
    """The item page, its live part and the verdict forms."""

    async def _request_page(
        self,
        visitor: _Visitor,
        request_id: str,
        *,
        form: _VoteForm | None = None,
        status: int = 200,
        similar: SimilarForm | None = None,
        template: str = "request.html",
    ) -> Response:
        try:
            item = await self.review.get(request_id)
        except NotFound:
            return self._message(
                visitor, "Not found", f"There is no request {request_id}.", status=404
            )
        verdict = _vote_verdict(item)
        blocked: str | None = None
        if item.awaiting_verdict:
            try:
                self.review.check_vote(item, visitor.reviewer, verdict)
            except NotAllowed as exc:
                blocked = exc.message
        records = await self.repo.audit_records(request_id=request_id)
        form = form or _VoteForm(
            modified_payload=json.dumps(
                dict(item.current_action.payload), indent=2, sort_keys=True, ensure_ascii=False
            )
        )
        context = dict(item.context)
        first = {key: context.pop(key, None) for key in _item.FIRST_KEYS}
        below = {key: context.pop(key, None) for key in _item.BELOW_KEYS}
        can_vote = item.awaiting_verdict and blocked is None
        return self._html(
            visitor,
            template,
            status=status,
            similar=similar or prefilled(item),
            allow_similar=can_vote and offered(item),
            item=item,
            mode="review" if verdict is Verdict.CONFIRM else "decide",
            can_vote=item.awaiting_verdict and blocked is None,
            blocked=blocked,
            rationale_always=self.review.rationale_required(item, Verdict.APPROVE),
            screen=_item.first_screen(item, self.wording, self.clock.now()),
            leaves=_payload.editable(item.current_action.payload),
            audit_lines=self.audit_words.lines(records),
            answer_choices=choices(item.response_schema),
            answer_is_text=wants_text(item.response_schema),
            form=form,
            first=first,
            below=below,
            extra_context={k: v for k, v in context.items() if v not in (None, "", [], {})},
        )

    async def request_page(self, request: Request, request_id: str) -> Response:
        visitor = await self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        return await self._request_page(visitor, request_id)

    async def request_live(self, request: Request, request_id: str) -> Response:
        """The parts of an item page that change with votes, polled by static/signoff.js."""
        visitor = await self._visitor(request)
        if visitor.login is None:
            return Response(status_code=401, headers=SECURITY_HEADERS)
        return await self._request_page(visitor, request_id, template="_item_live.html")

    async def vote_submit(self, request: Request, request_id: str) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, data = posted
        form = _VoteForm(
            rationale=data.get("rationale", "")[:5000],
            modified_payload=data.get("modified_payload", "")[:100_000],
            response=data.get("response", "")[:5000],
        )
        try:
            verdict = Verdict(data.get("verdict", ""))
        except ValueError:
            form.error = "Choose Approve, Reject or Modify (or Confirm or Reverse)."
            return await self._request_page(visitor, request_id, form=form, status=400)
        payload: dict[str, Any] | None = None
        if (
            verdict is Verdict.MODIFY
            and _payload.SHA_FIELD in data
            and request.query_params.get("from") != "json"
        ):
            form.fields = {k: v for k, v in data.items() if k.startswith(_payload.FIELD_PREFIX)}
            try:
                item = await self.review.get(request_id)
                payload = _payload.read_posted(item.current_action, data)
            except NotFound:
                return self._message(
                    visitor, "Not found", f"There is no request {request_id}.", status=404
                )
            except _payload.FieldErrors as exc:
                form.field_errors.update(exc.errors)
                return await self._request_page(visitor, request_id, form=form, status=422)
        elif verdict is Verdict.MODIFY:
            try:
                parsed = jsondepth.loads(form.modified_payload)
            except jsondepth.TooDeep as exc:
                form.field_errors["modified_payload"] = (
                    f"The modified payload nests too deep: the limit is {exc.limit} levels. "
                    "Nothing was recorded."
                )
                return await self._request_page(visitor, request_id, form=form, status=422)
            except json.JSONDecodeError as exc:
                form.field_errors["modified_payload"] = (
                    f"The modified payload is not valid JSON: {exc.msg} "
                    f"(line {exc.lineno}, column {exc.colno}). Nothing was recorded."
                )
                return await self._request_page(visitor, request_id, form=form, status=422)
            if not isinstance(parsed, dict):
                form.field_errors["modified_payload"] = (
                    "The modified payload must be a JSON object ({...}). Nothing was recorded."
                )
                return await self._request_page(visitor, request_id, form=form, status=422)
            payload = parsed
        picked = data.get("reject_option", "").strip()[:200]
        if verdict is Verdict.REJECT and picked:
            form.rationale = f"{picked}: {form.rationale}" if form.rationale.strip() else picked
        try:
            await self.review.vote(
                request_id,
                visitor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=form.rationale,
                name=visitor.display,
                modified_payload=payload,
                answer=form.response if verdict is Verdict.RESPOND else None,
            )
        except NotFound:
            return self._message(
                visitor, "Not found", f"There is no request {request_id}.", status=404
            )
        except NotAllowed as exc:
            form.refusal = exc.message
            return await self._request_page(visitor, request_id, form=form, status=409)
        except InvalidInput as exc:
            form.field_errors[exc.field] = exc.problem[:1].upper() + exc.problem[1:] + "."
            return await self._request_page(visitor, request_id, form=form, status=422)
        return self._redirect("/?" + urlencode({"voted": request_id}))

    async def allow_similar(self, request: Request, request_id: str) -> Response:
        """Approve + allow similar: approve this item and grant a standing approval for
        requests like it (bot.core.similar). A refused grant records nothing."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, data = posted
        similar = read_similar(data)
        try:
            grant = await approve_and_allow(
                self.review,
                request_id,
                similar,
                visitor.reviewer,
                channel=CHANNEL,
                name=visitor.display,
            )
        except NotFound:
            return self._message(
                visitor, "Not found", f"There is no request {request_id}.", status=404
            )
        if grant is None:
            status = 409 if similar.refusal else 422
            return await self._request_page(visitor, request_id, similar=similar, status=status)
        return self._redirect("/?" + urlencode({"voted": request_id}))
