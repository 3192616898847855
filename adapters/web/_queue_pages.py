"""The inbox: the reviewer's queues (tabs), their live rows and batch decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from adapters.web import _queues
from adapters.web._base import (
    CHANNEL,
    PICK_FIELD,
    RISKS,
    SECURITY_HEADERS,
    InboxBase,
    _BatchGroup,
    _BatchOutcome,
    _Filters,
    _Visitor,
    _vote_verdict,
)
from bot.core.domain import (
    ApprovalRequest,
    Verdict,
    batch_blocker,
)
from bot.core.errors import InvalidInput, NotAllowed, NotFound


class QueuePages(InboxBase):
    """The inbox page, its live rows and the batch form."""

    async def _inbox_items(self, visitor: _Visitor, filters: _Filters) -> list[ApprovalRequest]:
        items = []
        for request in await self.review.pending_for(visitor.reviewer):
            try:
                self.review.check_vote(request, visitor.reviewer, _vote_verdict(request))
            except NotAllowed:
                continue
            if filters.keep(request):
                items.append(request)
        return items

    async def _inbox_context(
        self, visitor: _Visitor, filters: _Filters, items: Sequence[ApprovalRequest]
    ) -> dict[str, Any]:
        """The tabs and the rows of the chosen one; `items` are those waiting for you."""
        others = [
            r
            for r in await _queues.waiting_on_others(self.repo, visitor.reviewer)
            if filters.keep(r)
        ]
        shown: Sequence[ApprovalRequest] = items
        if filters.tab == "others":
            shown = others
        elif filters.tab == "decided":
            decided = await _queues.decided_by(self.repo, visitor.reviewer)
            shown = [r for r in decided if filters.keep(r)]
        counts = {"waiting": len(items), "others": len(others), "decided": None}
        return {
            "items": items,
            "rows": _queues.rows(shown, visitor.reviewer, self.wording, self.clock.now()),
            "tab": filters.tab,
            "tabs": [
                (key, label, counts[key], filters.on(key))
                for key, label in _queues.TAB_LABELS.items()
            ],
            "filters": filters,
            "poll_url": "/inbox/rows" + (f"?{filters.query()}" if filters.query() else ""),
        }

    def _batch_groups(self, items: Sequence[ApprovalRequest]) -> list[_BatchGroup]:
        """Groups of batch-eligible items (by tier and kind) that reached batch.min_items."""
        if self.settings.batch_min_items < 2:
            return []
        grouped: dict[tuple[str, str], list[ApprovalRequest]] = {}
        for item in items:
            if item.tier is not None and batch_blocker(item) is None:
                grouped.setdefault((item.tier, item.action.kind), []).append(item)
        groups = []
        for (tier, kind), members in grouped.items():
            if len(members) >= self.settings.batch_min_items:
                members.sort(key=lambda r: (r.created_at, r.id))
                shown = members[: self.settings.batch_max_items]
                groups.append(_BatchGroup(tier, kind, shown, len(members)))
        return groups

    async def inbox_page(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        voted = await self._voted_flash(visitor, request.query_params.get("voted"))
        return await self._inbox(visitor, _Filters.read(request.query_params), voted=voted)

    async def _inbox(
        self,
        visitor: _Visitor,
        filters: _Filters,
        *,
        status: int = 200,
        voted: tuple[ApprovalRequest, str] | None = None,
        batch_results: Sequence[_BatchOutcome] = (),
        batch_error: str | None = None,
    ) -> Response:
        items = await self._inbox_items(visitor, filters)
        return self._html(
            visitor,
            "inbox.html",
            status=status,
            voted=voted,
            agents=sorted({*self.settings.agents, *(r.agent_id for r in items)}),
            risks=RISKS,
            tiers=[t.name for t in self.policy.tiers],
            batch_groups=self._batch_groups(items),
            batch_results=batch_results,
            batch_error=batch_error,
            **await self._inbox_context(visitor, filters, items),
        )

    async def batch_submit(self, request: Request) -> Response:
        """Approve or reject the ticked items of one inbox group; results shown per item."""
        if self.settings.batch_min_items < 2:
            # Batch review is off (batch.min_items): the endpoint does not exist.
            return PlainTextResponse("Not Found", status_code=404)
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, form = posted
        filters = _Filters()
        picked = [
            key.removeprefix(PICK_FIELD)
            for key, value in form.items()
            if key.startswith(PICK_FIELD) and len(key) > len(PICK_FIELD) and value
        ]
        try:
            verdict = Verdict(form.get("verdict", ""))
        except ValueError:
            verdict = Verdict.CONFIRM  # refused just below, like any verdict but two
        if verdict not in (Verdict.APPROVE, Verdict.REJECT):
            error = "Choose Approve selected or Reject selected."
            return await self._inbox(visitor, filters, status=400, batch_error=error)
        if not picked:
            error = "Nothing was recorded: tick the items to decide first."
            return await self._inbox(visitor, filters, status=400, batch_error=error)
        try:
            results = await self.review.vote_many(
                picked,
                visitor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=form.get("rationale", "")[:5000],
                name=visitor.display,
                tier=form.get("tier") or None,
            )
        except InvalidInput as exc:
            error = f"Nothing was recorded: {exc.problem}."
            return await self._inbox(visitor, filters, status=422, batch_error=error)
        outcomes = []
        for result in results:
            summary = result.request_id
            try:
                summary = (await self.review.get(result.request_id)).action.summary
            except NotFound:
                pass
            outcomes.append(_BatchOutcome(result, summary))
        return await self._inbox(visitor, filters, batch_results=outcomes)

    async def _voted_flash(
        self, visitor: _Visitor, request_id: str | None
    ) -> tuple[ApprovalRequest, str] | None:
        if not request_id:
            return None
        try:
            request = await self.review.get(request_id)
        except NotFound:
            return None
        mine = [v for v in request.votes if v.reviewer == visitor.reviewer]
        return (request, mine[-1].verdict.value) if mine else None

    async def inbox_rows(self, request: Request) -> Response:
        """The live part of the inbox (tabs and rows), polled by static/signoff.js."""
        visitor = await self._visitor(request)
        if visitor.login is None:
            return Response(status_code=401, headers=SECURITY_HEADERS)
        filters = _Filters.read(request.query_params)
        items = await self._inbox_items(visitor, filters)
        context = await self._inbox_context(visitor, filters, items)
        return self._html(visitor, "_inbox_rows.html", **context)

    # one item
