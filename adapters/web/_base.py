"""The web inbox's shared parts: settings, the visitor, form reading, responses and sessions.

Each group of pages is a class of its own module built on `InboxBase`; `WebInbox`
(adapters.web.inbox) joins them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.web import _payload, _queues
from adapters.web._audit_words import AuditWords, channel_name
from adapters.web._present import environment
from adapters.web.oidc import (
    OidcClient,
    OidcSettings,
    PendingCodec,
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
from bot.core.audit_chain import AuditKeyring
from bot.core.domain import (
    ApprovalRequest,
    BatchItemResult,
    OutboxMessage,
    ReviewStatus,
    Status,
    Verdict,
    WebSession,
    new_id,
)
from bot.core.ports import Clock, Repository, ReviewService
from bot.core.wording import Wording
from bot.oversight import figures
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


class InboxBase:
    """State and helpers every page group uses: the visitor, sessions, responses."""

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
