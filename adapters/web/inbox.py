"""The web inbox (CONTRACT section 8): login, inbox, item pages, dashboard and audit view.

Server-rendered Jinja2 pages over the `ReviewService` and `Repository` ports. Votes go
through the same `ReviewService.vote` as Slack and Teams, so the rules and refusals are the
same; this module only translates forms to calls and results to HTML.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup

from adapters.web import _item, _payload, _queues, _standing, _svg
from adapters.web._audit_words import AuditWords, channel_name
from adapters.web._present import environment
from adapters.web.export import MEDIA_TYPES, audit_export
from adapters.web.oidc import (
    CALLBACK_PATH,
    PENDING_COOKIE,
    START_PATH,
    OidcClient,
    OidcError,
    OidcSettings,
    PendingCodec,
    PendingLogin,
)
from adapters.web.passwords import hash_password, verify_password
from adapters.web.sessions import (
    LOGIN_LINK_TTL,
    LoginGuard,
    LoginTokens,
    Session,
    SessionCodec,
    token_digest,
)
from bot.core import jsondepth
from bot.core.answers import choices, read_answer, wants_text
from bot.core.audit_chain import AuditKeyring, verify_audit
from bot.core.domain import (
    ApprovalRequest,
    AuditRecord,
    BatchItemResult,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    ReviewStatus,
    Status,
    Verdict,
    WebSession,
    as_utc,
    batch_blocker,
    new_id,
)
from bot.core.errors import InvalidInput, NotAllowed, NotFound
from bot.core.ports import Clock, Repository, ReviewService
from bot.core.wording import Wording
from bot.oversight import figures
from bot.oversight.cost import cost_figures
from bot.oversight.watch import gather
from routing import Lane, Policy

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
    "stopped": "The agent is stopped: its pending requests are rejected, and its new ones "
    "until it is started.",
    "started": "The agent is started again.",
    "no_agent": "There is no such agent.",
    "revoked": "The session is signed out, on every replica.",
    "no_session": "That session had already ended.",
    "grant_revoked": "The standing approval is revoked: matching requests wait for a person again.",
    "no_grant": "There is no such standing approval (or it was revoked already).",
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
    oidc: OidcSettings | None = None
    public_url: str = "http://127.0.0.1:8000"
    agents: Sequence[str] = ()
    session_max_age: timedelta = timedelta(hours=12)
    poll_seconds: float = 3.0
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    login_link_ttl: timedelta = LOGIN_LINK_TTL
    thresholds: figures.Thresholds = figures.DEFAULTS
    # batch.min_items (0: off) and batch.max_items of the config.
    batch_min_items: int = 0
    batch_max_items: int = 20
    # Items scored above it are flagged "likely to need you" (prediction.threshold, or in
    # active mode the prepared band's start); None (prediction off) shows no score.
    likely_at: float | None = None
    # oversight.reviewer_hourly_cost by tier (None: reviewer time is shown in hours only).
    hourly_cost: Callable[[str | None], float | None] = lambda _tier: None
    # The audit keys, so the audit page checks keyed links as `signoff audit verify` does.
    audit_keyring: AuditKeyring | None = None

    @property
    def builtin_admin(self) -> bool:
        """With neither `web.reviewers` nor `web.oidc`, the built-in `admin` signs in through
        one-time links."""
        return not self.reviewers and self.oidc is None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


@dataclass
class _Visitor:
    session: Session
    fresh: bool
    login: str | None = None
    display: str = ""
    # The server-side session (bot.domain.WebSession) of a signed-in visitor.
    session_id: str = ""

    @property
    def reviewer(self) -> str:
        return f"web:{self.login}"


@dataclass(frozen=True)
class _Filters:
    agent: str = ""
    risk: str = ""
    tier: str = ""
    tab: _queues.TabKey = "waiting"

    @classmethod
    def read(cls, query: Mapping[str, str]) -> _Filters:
        return cls(
            agent=query.get("agent", "")[:100],
            risk=query.get("risk", "") if query.get("risk") in RISKS else "",
            tier=query.get("tier", "")[:100],
            tab=_queues.tab_key(query.get("tab")),
        )

    def keep(self, request: ApprovalRequest) -> bool:
        return (
            (not self.agent or request.agent_id == self.agent)
            and (not self.risk or request.risk.value == self.risk)
            and (not self.tier or request.tier == self.tier)
        )

    def query(self) -> str:
        """The filters as a query string; the first tab is the default and stays unsaid."""
        return urlencode({k: v for k, v in vars(self).items() if v and v != "waiting"})

    def on(self, tab: _queues.TabKey) -> str:
        query = dataclasses.replace(self, tab=tab).query()
        return "/" + (f"?{query}" if query else "")


@dataclass
class _VoteForm:
    rationale: str = ""
    modified_payload: str = ""
    response: str = ""
    # The payload form's inputs as posted (pf_0, pf_1...), shown again after an error.
    fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    refusal: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)


def _address(request: Request) -> str:
    """The client's address (behind a proxy, the one uvicorn's --forwarded-allow-ips trusts)."""
    return request.client.host if request.client is not None else ""


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
        # Room for a batch form (batch.max_items is at most 50) and for a payload form
        # (one input per leaf, at most _payload.MAX_FORM_LEAVES).
        parsed = parse_qs(
            raw.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=_payload.MAX_FORM_LEAVES + 40,
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
        wording: Wording | None = None,
    ) -> None:
        self.review = review
        self.wording = wording or Wording(policy)
        self.repo = repo
        self.clock = clock
        self.policy = policy
        self.settings = settings
        self.requeue = requeue
        self.codec = SessionCodec(settings.session_secret)
        self.guard = LoginGuard(repo, settings.max_failures, settings.lockout)
        self.tokens = LoginTokens(repo, settings.login_link_ttl)
        self.oidc = OidcClient(settings.oidc) if settings.oidc is not None else None
        self.pending = PendingCodec(settings.session_secret)
        self.env = environment(self.wording)
        self.env.filters["channel_name"] = channel_name
        self.audit_words = AuditWords(self.wording)
        self._dummy_hash: str | None = None

    # -- sign-in -------------------------------------------------------------------------

    async def issue_login_link(self, login: str = BUILTIN_LOGIN) -> str:
        """A one-time sign-in link for `login`: the built-in `admin` when `web.reviewers` is
        empty, else one of the configured reviewers.

        Raises ValueError naming the logins that may sign in when `login` is not one of them
        (with `web.oidc` and no `web.reviewers`, none may: people sign in through the
        identity provider).
        """
        if self._fingerprint("link", login) is None:
            allowed = sorted(self.settings.reviewers)
            if self.settings.builtin_admin:
                allowed.append(BUILTIN_LOGIN)
            if not allowed:
                raise ValueError(
                    "web.oidc is configured: reviewers sign in with the identity provider"
                )
            raise ValueError(f"no web reviewer {login!r} (one of: {', '.join(allowed)})")
        token = await self.tokens.issue(login, self.clock.now())
        return f"{self.settings.public_url.rstrip('/')}/login/token/{token}"

    def _fingerprint(self, method: str, login: str) -> str | None:
        """Binds a session to the credentials it was opened with; None when they are gone
        (a removed reviewer, a provider no longer configured)."""
        if method in ("password", "link"):
            # A one-time link may open a configured reviewer's session too (`signoff web
            # login-link --reviewer`); it is bound to their password like a sign-in.
            entry = self.settings.reviewers.get(login)
            if entry is not None:
                return hashlib.sha256(b"pw:" + entry.password_hash.encode()).hexdigest()[:32]
        if method == "link" and self.settings.builtin_admin and login == BUILTIN_LOGIN:
            return "builtin"
        if method == "oidc" and self.settings.oidc is not None:
            return self.settings.oidc.fingerprint
        return None

    def _display(self, login: str) -> str:
        entry = self.settings.reviewers.get(login)
        return entry.name if entry else login

    def _anonymous(self) -> _Visitor:
        return _Visitor(
            Session.anonymous(self.clock.now(), self.settings.session_max_age), fresh=True
        )

    async def _visitor(self, request: Request) -> _Visitor:
        now = self.clock.now()
        session = self.codec.decode(request.cookies.get(SESSION_COOKIE), now)
        if session is None:
            return self._anonymous()
        if session.login is None:
            return _Visitor(session, fresh=False)
        # The cookie only names the session; the row decides, so a sign-out or a revocation
        # holds on every replica and after a restart.
        stored = await self.repo.web_session(token_digest(session.sid))
        if (
            stored is None
            or not stored.active(now)
            or stored.login != session.login
            or self._fingerprint(stored.method, stored.login) != stored.fingerprint
        ):
            return self._anonymous()
        return _Visitor(
            session,
            fresh=False,
            login=stored.login,
            display=stored.name,
            session_id=stored.id,
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

    async def _sign_in(
        self,
        request: Request,
        visitor: _Visitor,
        login: str,
        target: str,
        *,
        method: str,
        name: str | None = None,
    ) -> Response:
        fingerprint = self._fingerprint(method, login)
        assert fingerprint is not None
        now = self.clock.now()
        session = visitor.session.signed_in(login, fingerprint, now, self.settings.session_max_age)
        await self.repo.create_web_session(
            WebSession(
                id=new_id("ws"),
                token_sha256=token_digest(session.sid),
                login=login,
                name=(name or self._display(login))[:200],
                method=method,
                fingerprint=fingerprint,
                address=_address(request),
                created_at=now,
                expires_at=now + self.settings.session_max_age,
            )
        )
        response = RedirectResponse(_local_path(target), status_code=303, headers=SECURITY_HEADERS)
        self._set_cookie(response, session)
        log.info("web reviewer %s signed in (%s)", login, method)
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
            password_login=bool(self.settings.reviewers),
            oidc_label=self.oidc.settings.label if self.oidc is not None else None,
            likely_at=self.settings.likely_at,
            poll_seconds=self.settings.poll_seconds,
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
        visitor = await self._visitor(request)
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
        visitor = await self._visitor(request)
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
        visitor = await self._visitor(request)
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

        address = _address(request)
        until = await self.guard.locked_until(login, address, now)
        if until is not None:
            return again(
                "Too many failed sign-ins for this name from your address. "
                f"Try again after {self.wording.moment(until)}.",
                429,
            )
        if not login or not password or not await self._password_ok(login, password):
            locked = await self.guard.failed(login, address, now)
            log.warning("failed web sign-in for %r from %s", login, address)
            if locked is not None:
                return again(
                    "Wrong name or password. This name is now locked for "
                    f"{int(self.settings.lockout.total_seconds() // 60)} minutes "
                    "from your address.",
                    429,
                )
            return again("Wrong name or password.", 401)
        await self.guard.succeeded(login, address)
        return await self._sign_in(request, visitor, login, target, method="password")

    async def token_page(self, request: Request, token: str) -> Response:
        visitor = await self._visitor(request)
        login = await self.tokens.peek(token, self.clock.now())
        if login is None:
            return self._message(
                visitor,
                "Sign-in link used up",
                "This sign-in link was already used or has expired. Run `signoff web "
                "login-link` for a new one.",
                status=410,
                link="/login",
            )
        return self._html(visitor, "login_token.html", token=token, login=login)

    async def token_submit(self, request: Request, token: str) -> Response:
        visitor = await self._visitor(request)
        form = await _form(request)
        if visitor.fresh or not visitor.session.check_csrf(form.get("csrf")):
            return self._csrf_refusal(visitor)
        login = await self.tokens.redeem(token, self.clock.now())
        if login is None or self._fingerprint("link", login) is None:
            return self._message(
                visitor,
                "Sign-in link used up",
                "This sign-in link was already used or has expired. Run `signoff web "
                "login-link` for a new one.",
                status=410,
                link="/login",
            )
        return await self._sign_in(request, visitor, login, "/", method="link")

    async def oidc_start(self, request: Request) -> Response:
        """Send the browser to the identity provider (a plain link, not a form: the CSP's
        form-action 'self' would stop a form's redirect to another origin)."""
        visitor = await self._visitor(request)
        target = _local_path(request.query_params.get("next"))
        if self.oidc is None:
            return self._message(
                visitor, "Not found", "Sign-in with an identity provider is off.", status=404
            )
        if visitor.login is not None:
            return self._redirect(target)
        pending = PendingLogin.new(target, self.clock.now(), self.oidc.settings.pending_ttl)
        try:
            url = await self.oidc.authorization_url(pending)
        except OidcError as exc:
            return self._oidc_refusal(visitor, str(exc), status=502)
        response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            PENDING_COOKIE,
            self.pending.encode(pending),
            max_age=int(self.oidc.settings.pending_ttl.total_seconds()),
            path=CALLBACK_PATH,
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
        )
        if visitor.fresh:
            self._set_cookie(response, visitor.session)
        return response

    def _oidc_refusal(self, visitor: _Visitor, reason: str, *, status: int) -> HTMLResponse:
        response = self._message(
            visitor,
            "Sign-in failed",
            f"Signing in through the identity provider failed: {reason}. Nothing was "
            "changed; go back to the sign-in page and try again.",
            status=status,
            link="/login",
        )
        response.delete_cookie(PENDING_COOKIE, path=CALLBACK_PATH)
        return response

    async def oidc_callback(self, request: Request) -> Response:
        """The provider's redirect back: check the state, redeem the code, sign in."""
        visitor = await self._visitor(request)
        if self.oidc is None:
            return self._message(
                visitor, "Not found", "Sign-in with an identity provider is off.", status=404
            )
        now = self.clock.now()
        params = request.query_params
        pending = self.pending.decode(request.cookies.get(PENDING_COOKIE), now)
        if pending is None:
            return self._oidc_refusal(
                visitor, "this sign-in was not started here or took too long", status=400
            )
        state = params.get("state", "")
        if not hmac.compare_digest(pending.state.encode(), state.encode("utf-8", "replace")):
            log.warning("OIDC callback with a state that does not match its cookie")
            return self._oidc_refusal(visitor, "the sign-in state does not match", status=400)
        if params.get("error"):
            reason = f"the identity provider answered {params['error'][:100]!r}"
            return self._oidc_refusal(visitor, reason, status=401)
        code = params.get("code", "")
        if not code:
            return self._oidc_refusal(visitor, "the identity provider sent no code", status=400)
        try:
            identity = await self.oidc.redeem(code, pending, now)
        except OidcError as exc:
            log.warning("OIDC sign-in refused: %s", exc)
            return self._oidc_refusal(visitor, str(exc), status=401)
        response = await self._sign_in(
            request, visitor, identity.value, pending.target, method="oidc", name=identity.name
        )
        response.delete_cookie(PENDING_COOKIE, path=CALLBACK_PATH)
        return response

    async def logout(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, _ = posted
        await self.repo.revoke_web_session(visitor.session_id, self.clock.now(), visitor.reviewer)
        log.info("web reviewer %s signed out", visitor.login)
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

    async def _request_page(
        self,
        visitor: _Visitor,
        request_id: str,
        *,
        form: _VoteForm | None = None,
        status: int = 200,
        similar: _standing.SimilarForm | None = None,
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
            similar=similar or _standing.prefilled(item),
            allow_similar=can_vote
            and verdict is Verdict.APPROVE
            and item.lane is Lane.ESCALATE
            and item.approvals_required == 1,
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
        response: Any = None
        if verdict is Verdict.RESPOND:
            try:
                item = await self.review.get(request_id)
                response = read_answer(item.response_schema, form.response)
            except NotFound:
                return self._message(
                    visitor, "Not found", f"There is no request {request_id}.", status=404
                )
            except InvalidInput as exc:
                form.field_errors["response"] = exc.problem[:1].upper() + exc.problem[1:] + "."
                return await self._request_page(visitor, request_id, form=form, status=422)
        try:
            await self.review.vote(
                request_id,
                visitor.reviewer,
                verdict,
                channel=CHANNEL,
                rationale=form.rationale,
                name=visitor.display,
                modified_payload=payload,
                response=response,
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
        requests like it. The grant is checked first, so a refused grant records nothing."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        visitor, data = posted
        similar = _standing.read(data)
        try:
            item = await self.review.get(request_id)
        except NotFound:
            return self._message(
                visitor, "Not found", f"There is no request {request_id}.", status=404
            )
        ask = _standing.grant_request(similar, item, visitor.reviewer)
        if ask is None:
            return await self._request_page(visitor, request_id, similar=similar, status=422)
        try:
            self.review.check_standing(ask)
            self.review.check_vote(item, visitor.reviewer, Verdict.APPROVE)
        except InvalidInput as exc:
            similar.errors[exc.field] = exc.problem[:1].upper() + exc.problem[1:] + "."
            return await self._request_page(visitor, request_id, similar=similar, status=422)
        except (NotAllowed, NotFound) as exc:
            similar.refusal = str(exc)
            return await self._request_page(visitor, request_id, similar=similar, status=409)
        try:
            await self.review.vote(
                request_id,
                visitor.reviewer,
                Verdict.APPROVE,
                channel=CHANNEL,
                rationale=f"approved and allowed similar: {ask.reason}",
                name=visitor.display,
            )
        except (NotAllowed, InvalidInput) as exc:
            similar.refusal = str(exc)
            return await self._request_page(visitor, request_id, similar=similar, status=409)
        await self.review.grant_standing(ask, channel=CHANNEL)
        return self._redirect("/?" + urlencode({"voted": request_id}))

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


_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("/login", "GET", "login_page"),
    ("/login", "POST", "login_submit"),
    (START_PATH, "GET", "oidc_start"),
    (CALLBACK_PATH, "GET", "oidc_callback"),
    ("/login/token/{token}", "GET", "token_page"),
    ("/login/token/{token}", "POST", "token_submit"),
    ("/logout", "POST", "logout"),
    ("/", "GET", "inbox_page"),
    ("/inbox/rows", "GET", "inbox_rows"),
    ("/requests/{request_id}", "GET", "request_page"),
    ("/requests/{request_id}/live", "GET", "request_live"),
    ("/requests/{request_id}/vote", "POST", "vote_submit"),
    ("/batch", "POST", "batch_submit"),
    ("/requests/{request_id}/allow-similar", "POST", "allow_similar"),
    ("/standing/{grant_id}/revoke", "POST", "revoke_standing"),
    ("/dashboard", "GET", "dashboard_page"),
    ("/deliveries/{delivery_id}/retry", "POST", "retry_delivery"),
    ("/agents/{agent_id}/stop", "POST", "stop_agent"),
    ("/agents/{agent_id}/start", "POST", "start_agent"),
    ("/sessions/{session_id}/revoke", "POST", "revoke_session"),
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
