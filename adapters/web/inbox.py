"""The web inbox (CONTRACT section 8): login, inbox, item pages, dashboard and audit view.

Server-rendered Jinja2 pages over the `ReviewService` and `Repository` ports. Votes go
through the same `ReviewService.vote` as Slack and Teams, so the rules and refusals are the
same; this module only translates forms to calls and results to HTML.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from adapters.web import _svg
from adapters.web._present import environment, short_time
from adapters.web.export import MEDIA_TYPES, audit_export
from adapters.web.passwords import hash_password, verify_password
from adapters.web.sessions import (
    LoginGuard,
    LoginTokens,
    RevokedSessions,
    Session,
    SessionCodec,
)
from bot import oversight as figures
from bot.audit_chain import AuditKeyring, verify_audit
from bot.domain import (
    ApprovalRequest,
    AuditRecord,
    BatchItemResult,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    ReviewStatus,
    Status,
    Verdict,
    as_utc,
    batch_blocker,
)
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.ports import Clock, Repository, ReviewService
from bot.watch import gather
from routing import Policy

log = logging.getLogger("signoff.web")

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "signoff_session"
BUILTIN_LOGIN = "admin"
CHANNEL = "web"
RISKS = ("low", "medium", "high")
DASHBOARD_DAYS = 30
MAX_DASHBOARD_REQUESTS = 20_000
MAX_AUDIT_ROWS = 500

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

FLASH = {
    "retried": "The delivery is queued again.",
    "not_dead": "That delivery is not dead (it may have been retried already).",
    "no_delivery": "There is no such delivery.",
    "stopped": "The agent is stopped: its new requests are rejected until it is started.",
    "started": "The agent is started again.",
    "no_agent": "There is no such agent.",
}

Requeue = Callable[[OutboxMessage, str], Awaitable[OutboxMessage | None]]


@dataclass(frozen=True)
class WebLogin:
    """A `web.reviewers` entry: the scrypt hash and the name shown on votes."""

    password_hash: str
    name: str


@dataclass(frozen=True)
class WebSettings:
    reviewers: Mapping[str, WebLogin]
    session_secret: bytes
    public_url: str = "http://127.0.0.1:8000"
    agents: Sequence[str] = ()
    session_max_age: timedelta = timedelta(hours=12)
    poll_seconds: float = 3.0
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    login_link_ttl: timedelta = timedelta(hours=24)
    thresholds: figures.Thresholds = figures.DEFAULTS
    # batch.min_items (0: off) and batch.max_items of the config.
    batch_min_items: int = 0
    batch_max_items: int = 20
    # The audit keys, so the audit page checks keyed links as `signoff audit verify` does.
    audit_keyring: AuditKeyring | None = None

    @property
    def builtin_admin(self) -> bool:
        """With no `web.reviewers`, the built-in `admin` signs in through one-time links."""
        return not self.reviewers

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


@dataclass
class _Visitor:
    session: Session
    fresh: bool
    login: str | None = None
    display: str = ""

    @property
    def reviewer(self) -> str:
        return f"web:{self.login}"


@dataclass(frozen=True)
class _Filters:
    agent: str = ""
    risk: str = ""
    tier: str = ""

    @classmethod
    def read(cls, query: Mapping[str, str]) -> _Filters:
        return cls(
            agent=query.get("agent", "")[:100],
            risk=query.get("risk", "") if query.get("risk") in RISKS else "",
            tier=query.get("tier", "")[:100],
        )

    def keep(self, request: ApprovalRequest) -> bool:
        return (
            (not self.agent or request.agent_id == self.agent)
            and (not self.risk or request.risk.value == self.risk)
            and (not self.tier or request.tier == self.tier)
        )

    def query(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})


@dataclass
class _VoteForm:
    rationale: str = ""
    modified_payload: str = ""
    error: str | None = None
    refusal: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)


def _local_path(target: str | None) -> str:
    """Only same-site paths may be redirect targets after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    """URL-encoded form fields (first value of each); anything else reads as empty."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    raw = await request.body()
    try:
        # Room for a batch form: one field per item (batch.max_items is at most 50).
        parsed = parse_qs(
            raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=120
        )
    except ValueError:
        return {}
    return {key: values[0] for key, values in parsed.items()}


@dataclass(frozen=True)
class _BatchGroup:
    """Same-kind items at one tier that the reviewer may decide together on the inbox page."""

    tier: str
    kind: str
    items: Sequence[ApprovalRequest]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@dataclass(frozen=True)
class _BatchOutcome:
    result: BatchItemResult
    summary: str


PICK_FIELD = "pick_"


def _vote_verdict(request: ApprovalRequest) -> Verdict:
    """The verdict that tells whether a reviewer may act: confirm for open reviews."""
    if request.status is not Status.PENDING and request.review_status is ReviewStatus.OPEN:
        return Verdict.CONFIRM
    return Verdict.APPROVE


class WebInbox:
    """The web inbox of one process: its settings, its ports and its in-memory guards."""

    def __init__(
        self,
        *,
        review: ReviewService,
        repo: Repository,
        clock: Clock,
        policy: Policy,
        settings: WebSettings,
        requeue: Requeue,
    ) -> None:
        self.review = review
        self.repo = repo
        self.clock = clock
        self.policy = policy
        self.settings = settings
        self.requeue = requeue
        self.codec = SessionCodec(settings.session_secret)
        self.guard = LoginGuard(repo, settings.max_failures, settings.lockout)
        self.tokens = LoginTokens(settings.login_link_ttl)
        self.revoked = RevokedSessions()
        self.env = environment()
        self._dummy_hash: str | None = None

    # -- sign-in -------------------------------------------------------------------------

    def issue_login_link(self) -> str:
        """A one-time sign-in link for the built-in `admin` (embedded default only).

        Raises RuntimeError when `web.reviewers` is configured (they sign in with passwords).
        """
        if not self.settings.builtin_admin:
            raise RuntimeError("web.reviewers is configured: reviewers sign in with passwords")
        token = self.tokens.issue(BUILTIN_LOGIN, self.clock.now())
        return f"{self.settings.public_url.rstrip('/')}/login/token/{token}"

    def _fingerprint(self, login: str) -> str | None:
        """Binds a session to the credentials it was opened with; None for unknown logins."""
        entry = self.settings.reviewers.get(login)
        if entry is not None:
            return hashlib.sha256(b"pw:" + entry.password_hash.encode()).hexdigest()[:32]
        if self.settings.builtin_admin and login == BUILTIN_LOGIN:
            return "builtin"
        return None

    def _display(self, login: str) -> str:
        entry = self.settings.reviewers.get(login)
        return entry.name if entry else login

    def _visitor(self, request: Request) -> _Visitor:
        now = self.clock.now()
        session = self.codec.decode(request.cookies.get(SESSION_COOKIE), now)
        if session is None or session.sid in self.revoked:
            return _Visitor(Session.anonymous(now, self.settings.session_max_age), fresh=True)
        if session.login is None:
            return _Visitor(session, fresh=False)
        if self._fingerprint(session.login) != session.fingerprint:
            # The reviewer was removed or their password changed since this cookie was made.
            return _Visitor(Session.anonymous(now, self.settings.session_max_age), fresh=True)
        return _Visitor(
            session, fresh=False, login=session.login, display=self._display(session.login)
        )

    def _set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.codec.encode(session),
            max_age=int(self.settings.session_max_age.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
        )

    def _sign_in(self, visitor: _Visitor, login: str, target: str) -> Response:
        fingerprint = self._fingerprint(login)
        assert fingerprint is not None
        session = visitor.session.signed_in(
            login, fingerprint, self.clock.now(), self.settings.session_max_age
        )
        response = RedirectResponse(_local_path(target), status_code=303, headers=SECURITY_HEADERS)
        self._set_cookie(response, session)
        log.info("web reviewer %s signed in", login)
        return response

    async def _password_ok(self, login: str, password: str) -> bool:
        entry = self.settings.reviewers.get(login)
        if entry is None:
            # Spend the same time on unknown names, so timing does not reveal who exists.
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(hash_password, "signoff-dummy")
            await asyncio.to_thread(verify_password, password, self._dummy_hash)
            return False
        return await asyncio.to_thread(verify_password, password, entry.password_hash)

    # -- responses -----------------------------------------------------------------------

    def _html(
        self, visitor: _Visitor, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = self.env.get_template(template).render(
            csrf=visitor.session.csrf,
            me=visitor,
            now=self.clock.now(),
            builtin_admin=self.settings.builtin_admin,
            **context,
        )
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if visitor.fresh:
            self._set_cookie(response, visitor.session)
        return response

    def _message(
        self, visitor: _Visitor, title: str, text: str, *, status: int, link: str = "/"
    ) -> HTMLResponse:
        return self._html(visitor, "message.html", status=status, title=title, text=text, link=link)

    def _to_login(self, request: Request, visitor: _Visitor) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(
            "/login?" + urlencode({"next": target}), status_code=303, headers=SECURITY_HEADERS
        )
        if visitor.fresh:
            self._set_cookie(response, visitor.session)
        return response

    def _redirect(self, target: str) -> Response:
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)

    async def _posted(self, request: Request) -> tuple[_Visitor, dict[str, str]] | Response:
        """A signed-in visitor and a form whose CSRF token matches, or the refusal to send."""
        visitor = self._visitor(request)
        form = await _form(request)
        if visitor.fresh or not visitor.session.check_csrf(form.get("csrf")):
            return self._csrf_refusal(visitor)
        if visitor.login is None:
            return self._to_login(request, visitor)
        return visitor, form

    def _csrf_refusal(self, visitor: _Visitor) -> HTMLResponse:
        return self._message(
            visitor,
            "Form expired",
            "This form's security token is missing or out of date (or the form came from "
            "another site). Nothing was changed. Go back, reload the page and try again.",
            status=403,
        )

    # -- routes --------------------------------------------------------------------------

    # login, logout

    async def login_page(self, request: Request) -> Response:
        visitor = self._visitor(request)
        target = _local_path(request.query_params.get("next"))
        if visitor.login is not None:
            return self._redirect(target)
        return self._html(
            visitor,
            "login.html",
            target=target,
            username="",
            error=None,
            signed_out="out" in request.query_params,
        )

    async def login_submit(self, request: Request) -> Response:
        visitor = self._visitor(request)
        form = await _form(request)
        if visitor.fresh or not visitor.session.check_csrf(form.get("csrf")):
            return self._csrf_refusal(visitor)
        login = form.get("username", "").strip()[:200]
        password = form.get("password", "")
        target = _local_path(form.get("next"))
        now = self.clock.now()

        def again(error: str, status: int) -> Response:
            return self._html(
                visitor,
                "login.html",
                status=status,
                target=target,
                username=login,
                error=error,
                signed_out=False,
            )

        until = await self.guard.locked_until(login, now)
        if until is not None:
            return again(
                f"Too many failed sign-ins for this name. Try again after {short_time(until)}.",
                429,
            )
        if not login or not password or not await self._password_ok(login, password):
            locked = await self.guard.failed(login, now)
            log.warning("failed web sign-in for %r", login)
            if locked is not None:
                return again(
                    "Wrong name or password. This name is now locked for "
                    f"{int(self.settings.lockout.total_seconds() // 60)} minutes.",
                    429,
                )
            return again("Wrong name or password.", 401)
        await self.guard.succeeded(login)
        return self._sign_in(visitor, login, target)

    async def token_page(self, request: Request, token: str) -> Response:
        visitor = self._visitor(request)
        login = self.tokens.peek(token, self.clock.now())
        if login is None:
            return self._message(
                visitor,
                "Sign-in link used up",
                "This sign-in link was already used or has expired. Restart `signoff serve` "
                "for a new one.",
                status=410,
                link="/login",
            )
        return self._html(visitor, "login_token.html", token=token, login=login)

    async def token_submit(self, request: Request, token: str) -> Response:
        visitor = self._visitor(request)
        form = await _form(request)
        if visitor.fresh or not visitor.session.check_csrf(form.get("csrf")):
            return self._csrf_refusal(visitor)
        login = self.tokens.redeem(token, self.clock.now())
        if login is None or self._fingerprint(login) is None:
            return self._message(
                visitor,
                "Sign-in link used up",
                "This sign-in link was already used or has expired. Restart `signoff serve` "
                "for a new one.",
                status=410,
                link="/login",
            )
        return self._sign_in(visitor, login, "/")

    async def logout(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, _ = posted
        self.revoked.revoke(visitor.session, self.clock.now())
        response = self._redirect("/login?out=1")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # inbox

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

    def _inbox_context(self, filters: _Filters, items: Sequence[ApprovalRequest]) -> dict[str, Any]:
        return {
            "items": items,
            "filters": filters,
            "poll_url": "/inbox/rows" + (f"?{filters.query()}" if filters.query() else ""),
            "poll_seconds": self.settings.poll_seconds,
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
        visitor = self._visitor(request)
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
            **self._inbox_context(filters, items),
        )

    async def batch_submit(self, request: Request) -> Response:
        """Approve or reject the ticked items of one inbox group; results shown per item."""
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
        """The live part of the inbox, polled by htmx every few seconds."""
        visitor = self._visitor(request)
        if visitor.login is None:
            return Response(status_code=401, headers={"HX-Redirect": "/login", **SECURITY_HEADERS})
        filters = _Filters.read(request.query_params)
        items = await self._inbox_items(visitor, filters)
        return self._html(visitor, "_inbox_rows.html", **self._inbox_context(filters, items))

    # one item

    async def _request_page(
        self,
        visitor: _Visitor,
        request_id: str,
        *,
        form: _VoteForm | None = None,
        status: int = 200,
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
        first = {
            key: context.pop(key, None)
            for key in ("summary", "goal", "recommendation", "alternatives", "failure_reason")
        }
        below = {
            key: context.pop(key, None)
            for key in ("conversation", "actions_attempted", "customer", "transaction", "policies")
        }
        return self._html(
            visitor,
            "request.html",
            status=status,
            item=item,
            mode="review" if verdict is Verdict.CONFIRM else "decide",
            can_vote=item.awaiting_verdict and blocked is None,
            blocked=blocked,
            rationale_always=self.review.rationale_required(item, Verdict.APPROVE),
            form=form,
            first=first,
            below=below,
            extra_context={k: v for k, v in context.items() if v not in (None, "", [], {})},
            records=records,
        )

    async def request_page(self, request: Request, request_id: str) -> Response:
        visitor = self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        return await self._request_page(visitor, request_id)

    async def vote_submit(self, request: Request, request_id: str) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, data = posted
        form = _VoteForm(
            rationale=data.get("rationale", "")[:5000],
            modified_payload=data.get("modified_payload", "")[:100_000],
        )
        try:
            verdict = Verdict(data.get("verdict", ""))
        except ValueError:
            form.error = "Choose Approve, Reject or Modify (or Confirm or Reverse)."
            return await self._request_page(visitor, request_id, form=form, status=400)
        payload: dict[str, Any] | None = None
        if verdict is Verdict.MODIFY:
            try:
                parsed = json.loads(form.modified_payload)
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
        try:
            await self.review.vote(
                request_id,
                visitor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=form.rationale,
                name=visitor.display,
                modified_payload=payload,
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
            status=status,
            fig=data,
            charts=charts(data),
            alerts=[a for a in alerts if a.active],
            cleared=[a for a in alerts if not a.active][:10],
            dead=dead,
            dead_posts=dead_posts,
            agents=agents,
            may_stop=may_stop,
            top_tier=self.policy.top_tier,
            flash=FLASH.get(flash or ""),
            error=error,
            days=DASHBOARD_DAYS,
        )

    async def dashboard_page(self, request: Request) -> Response:
        visitor = self._visitor(request)
        if visitor.login is None:
            return self._to_login(request, visitor)
        return await self._dashboard(visitor, flash=request.query_params.get("flash"))

    async def retry_delivery(self, request: Request, delivery_id: str) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, _ = posted
        message = await self.repo.get_outbox(delivery_id)
        if message is None:
            return self._redirect("/dashboard?flash=no_delivery#deliveries")
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
        visitor = self._visitor(request)
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
            records=list(reversed(records[-MAX_AUDIT_ROWS:])),
            total=len(records),
            limit=MAX_AUDIT_ROWS,
            error=error,
            chain=chain,
            export_query=query,
        )

    async def audit_download(self, request: Request) -> Response:
        visitor = self._visitor(request)
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


_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/login", "GET", "login_page"),
    ("/login", "POST", "login_submit"),
    ("/login/token/{token}", "GET", "token_page"),
    ("/login/token/{token}", "POST", "token_submit"),
    ("/logout", "POST", "logout"),
    ("/", "GET", "inbox_page"),
    ("/inbox/rows", "GET", "inbox_rows"),
    ("/requests/{request_id}", "GET", "request_page"),
    ("/requests/{request_id}/vote", "POST", "vote_submit"),
    ("/batch", "POST", "batch_submit"),
    ("/dashboard", "GET", "dashboard_page"),
    ("/deliveries/{delivery_id}/retry", "POST", "retry_delivery"),
    ("/agents/{agent_id}/stop", "POST", "stop_agent"),
    ("/agents/{agent_id}/start", "POST", "start_agent"),
    ("/audit", "GET", "audit_page"),
    ("/audit/export", "GET", "audit_download"),
)

Page = Callable[..., Awaitable[Response]]


def web_router(resolve: Callable[[Request], WebInbox]) -> APIRouter:
    """The inbox's routes, each asking `resolve` for the inbox that serves the request.

    Resolving per request lets an app be built before its services exist (they are made in
    its lifespan). The routes stay out of the agent API's OpenAPI schema.
    """
    router = APIRouter(include_in_schema=False)

    def endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            page: Page = getattr(resolve(request), name)
            return await page(request, **request.path_params)

        serve.__name__ = f"web_{name}"
        return serve

    for path, method, name in _ROUTES:
        router.add_api_route(path, endpoint(name), methods=[method], name=f"web_{name}")
    return router


def charts(data: figures.Figures) -> dict[str, Markup]:
    labels = data.labels()
    lanes = [(lane, data.by_lane.get(lane, ())) for lane in figures.LANES]
    escalation = [r.value for r in data.escalation]
    overrides = [r.value for r in data.overrides]
    limits = data.thresholds
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
            "Share of requests escalated to a person per period; the shaded bands below "
            f"{limits.escalation_low:.0%} and above {limits.escalation_high:.0%} are warnings.",
            labels,
            escalation,
            warn_below=limits.escalation_low,
            warn_above=limits.escalation_high,
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
