"""What operators use: the dashboard, deliveries, the stop button, sessions and the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from adapters.web import _svg
from adapters.web._base import (
    CHANNEL,
    DASHBOARD_DAYS,
    FLASH,
    MAX_AUDIT_ROWS,
    MAX_DASHBOARD_REQUESTS,
    RISKS,
    SECURITY_HEADERS,
    InboxBase,
    _Visitor,
    log,
)
from adapters.web.export import MEDIA_TYPES, audit_export
from bot.core.audit_chain import verify_audit
from bot.core.domain import (
    AuditRecord,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    as_utc,
)
from bot.core.errors import NotAllowed, NotFound
from bot.oversight import figures
from bot.oversight.cost import cost_figures
from bot.oversight.watch import gather


class OperatorPages(InboxBase):
    """The dashboard and its actions, and the audit pages."""

    async def revoke_standing(self, request: Request, grant_id: str) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, _ = posted
        try:
            await self.review.revoke_standing(grant_id, visitor.reviewer, channel=CHANNEL)
        except NotAllowed as exc:
            return await self._dashboard(visitor, error=exc.message, status=403)
        except NotFound:
            return self._redirect("/dashboard?flash=no_grant#standing")
        return self._redirect("/dashboard?flash=grant_revoked#standing")

    # dashboard

    async def _dashboard(
        self,
        visitor: _Visitor,
        *,
        flash: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        now = self.clock.now()
        since = now - timedelta(days=DASHBOARD_DAYS)
        evidence = await gather(self.repo, since, limit=MAX_DASHBOARD_REQUESTS)
        dead = await self.repo.list_outbox(kind=OutboxKind.WEBHOOK, status=OutboxStatus.DEAD)
        dead_posts = [
            message
            for message in await self.repo.list_outbox(status=OutboxStatus.DEAD, limit=200)
            if message.kind is not OutboxKind.WEBHOOK
        ]
        data = evidence.figures(now, [t.name for t in self.policy.tiers], self.settings.thresholds)
        alerts = await self.repo.alerts()
        agents = []
        for agent_id in self.settings.agents:
            state = await self.repo.agent_state(agent_id)
            agents.append((agent_id, state))
        try:
            self.review.check_stop_authority(visitor.reviewer)
            may_stop = True
        except NotAllowed:
            may_stop = False
        return self._html(
            visitor,
            "dashboard.html",
            sessions=await self.repo.web_sessions(now) if may_stop else [],
            status=status,
            fig=data,
            charts=charts(data),
            alerts=[a for a in alerts if a.active],
            cleared=[a for a in alerts if not a.active][:10],
            dead=dead,
            dead_posts=dead_posts,
            agents=agents,
            may_stop=may_stop,
            grants=await self.repo.standing_approvals(active_at=now),
            cost=cost_figures(
                evidence.requests,
                self.settings.hourly_cost,
                start=data.start,
                width=data.width,
                buckets=len(data.buckets),
            ),
            top_tier=self.policy.top_tier,
            flash=FLASH.get(flash or ""),
            error=error,
            days=DASHBOARD_DAYS,
        )

    async def dashboard_page(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        return await self._dashboard(visitor, flash=request.query_params.get("flash"))

    async def retry_delivery(self, request: Request, delivery_id: str) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, form = posted
        try:
            # Re-sending tells an agent to act on an old verdict: the same people who may
            # stop and start agents decide that, not every reviewer who can see the list.
            self.review.check_stop_authority(visitor.reviewer)
        except NotAllowed:
            return self._message(
                visitor,
                "Not allowed",
                f"Only reviewers of tier {self.policy.top_tier} may re-send dead deliveries.",
                status=403,
                link="/dashboard#deliveries",
            )
        message = await self.repo.get_outbox(delivery_id)
        if message is None:
            return self._redirect("/dashboard?flash=no_delivery#deliveries")
        if _retired(message) and form.get("confirm") != "gone":
            return self._html(
                visitor, "confirm_retry.html", status=409, message=message, title="Confirm"
            )
        again = await self.requeue(message, visitor.reviewer)
        flash = "retried" if again is not None else "not_dead"
        return self._redirect(f"/dashboard?flash={flash}#deliveries")

    async def _set_stopped(self, request: Request, agent_id: str, stopped: bool) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, form = posted
        try:
            self.review.check_stop_authority(visitor.reviewer)
            await self.review.set_stopped(
                agent_id,
                stopped,
                actor=visitor.reviewer,
                reason=form.get("reason", "").strip()[:2000],
                channel=CHANNEL,
            )
        except NotAllowed as exc:
            return await self._dashboard(visitor, error=exc.message, status=403)
        except NotFound:
            return self._redirect("/dashboard?flash=no_agent#agents")
        return self._redirect(f"/dashboard?flash={'stopped' if stopped else 'started'}#agents")

    async def revoke_session(self, request: Request, session_id: str) -> Response:
        """Sign a session out on every replica: top-tier reviewers only, like the stop."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, _ = posted
        if not self.policy.is_top_tier_reviewer(visitor.reviewer):
            top = self.policy.top_tier
            error = f"Only reviewers of the top tier ({top}) may sign sessions out."
            return await self._dashboard(visitor, error=error, status=403)
        ended = await self.repo.revoke_web_session(
            session_id[:100], self.clock.now(), visitor.reviewer
        )
        if ended:
            log.info("web session %s revoked by %s", session_id, visitor.reviewer)
        return self._redirect(f"/dashboard?flash={'revoked' if ended else 'no_session'}#sessions")

    async def stop_agent(self, request: Request, agent_id: str) -> Response:
        return await self._set_stopped(request, agent_id, True)

    async def start_agent(self, request: Request, agent_id: str) -> Response:
        return await self._set_stopped(request, agent_id, False)

    # audit

    async def _audit_query(
        self, query: Mapping[str, str]
    ) -> tuple[dict[str, str], list[AuditRecord], str | None]:
        params = {
            key: query.get(key, "").strip()[:200]
            for key in ("request", "reviewer", "risk", "since", "until")
        }
        if params["risk"] not in RISKS:
            params["risk"] = ""
        error = None
        since = until = None
        try:
            if params["since"]:
                since = datetime.combine(date.fromisoformat(params["since"]), time(), UTC)
            if params["until"]:
                until = datetime.combine(
                    date.fromisoformat(params["until"]) + timedelta(days=1), time(), UTC
                )
        except ValueError:
            error = "Dates must be written as YYYY-MM-DD."
            since = until = None
        records = await self.repo.audit_records(
            since=since,
            request_id=params["request"] or None,
            risk=params["risk"] or None,
            actor=params["reviewer"] or None,
        )
        if until is not None:
            records = [r for r in records if as_utc(r.event.at) < until]
        return params, list(records), error

    async def audit_page(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        params, records, error = await self._audit_query(request.query_params)
        chain = verify_audit(
            await self.repo.audit_records(),
            await self.repo.audit_anchor(),
            keyring=self.settings.audit_keyring,
            anchor_required=False,
        )
        query = urlencode({k: v for k, v in params.items() if v})
        return self._html(
            visitor,
            "audit.html",
            params=params,
            risks=RISKS,
            lines=self.audit_words.lines(list(reversed(records[-MAX_AUDIT_ROWS:]))),
            total=len(records),
            limit=MAX_AUDIT_ROWS,
            error=error,
            chain=chain,
            export_query=query,
        )

    async def audit_download(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in MEDIA_TYPES:
            return self._message(
                visitor, "Unknown format", "Export as csv or jsonl.", status=400, link="/audit"
            )
        _, records, error = await self._audit_query(request.query_params)
        if error:
            return self._message(visitor, "Bad date", error, status=400, link="/audit")
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return Response(
            audit_export(records, fmt),
            media_type=MEDIA_TYPES[fmt],
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="signoff-audit-{stamp}.{fmt}"',
            },
        )


def _retired(message: OutboxMessage) -> bool:
    """The agent answered 410 Gone: it retired the URL, so re-sending needs a second look."""
    return (message.last_error or "").startswith("HTTP 410")


def charts(data: figures.Figures) -> dict[str, Markup]:
    labels = data.labels()
    lanes = [(lane, data.by_lane.get(lane, ())) for lane in figures.LANES]
    escalation = [r.value for r in data.escalation]
    overrides = [r.value for r in data.overrides]
    limits = data.thresholds
    target = figures.ESCALATION_TARGET
    return {
        "lanes": _svg.stacked_bars(
            "chart-lanes",
            "Requests by lane over time",
            f"{data.total} requests, bars stacked by lane (autonomous, review, escalate).",
            labels,
            [(name, tuple(values) or (0,) * len(labels)) for name, values in lanes],
        ),
        "escalation": _svg.rate_line(
            "chart-escalation",
            "Escalation rate",
            "Share of requests escalated to a person per period. Green: the target band "
            f"{target[0]:.0%}-{target[1]:.0%}; amber, beyond the dashed lines at "
            f"{limits.escalation_low:.0%} and {limits.escalation_high:.0%}: "
            "warning signs.",
            labels,
            escalation,
            warn_below=limits.escalation_low,
            warn_above=limits.escalation_high,
            target=target,
        ),
        "overrides": _svg.rate_line(
            "chart-overrides",
            "Override rate",
            "Share of human decisions that rejected, modified or reversed the agent's action.",
            labels,
            overrides,
        ),
        "queue": _svg.stacked_bars(
            "chart-queue",
            "Queue depth per tier over time",
            "Items waiting for a verdict at the end of each period, stacked by tier (lowest "
            f"first: {', '.join(name for name, _ in data.queue)}); now: "
            + ", ".join(f"{name} {count}" for name, count in data.queue)
            + ".",
            labels,
            [(name, data.queue_trend.get(name, (0,) * len(labels))) for name, _ in data.queue],
            by_position=True,
        ),
        "decisions": _svg.bars(
            "chart-decisions",
            "Time to decision",
            "How long escalated items waited for a human decision.",
            [label for label, _ in data.decision_bins],
            [count for _, count in data.decision_bins],
            css_class="bar alt",
        ),
        "reviewers": _svg.scatter(
            "chart-reviewers",
            "Approval rate against median time to decide",
            "One dot per reviewer; the shaded corner (deciding in under "
            f"{limits.rubber_stamp_seconds:.0f}s and approving at least "
            f"{limits.rubber_stamp_rate:.0%}) is where rubber-stamping shows.",
            [
                _svg.Point(s.median_seconds, s.approval_rate, s.name, s.rubber_stamp)
                for s in data.reviewers
            ],
            corner=(limits.rubber_stamp_seconds, limits.rubber_stamp_rate),
        ),
    }
