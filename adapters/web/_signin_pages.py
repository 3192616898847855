"""Signing in and out: passwords, one-time links and OpenID Connect."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.web._base import (
    BUILTIN_LOGIN,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    InboxBase,
    _address,
    _form,
    _local_path,
    _Visitor,
    log,
)
from adapters.web.oidc import (
    CALLBACK_PATH,
    PENDING_COOKIE,
    OidcError,
    PendingLogin,
)


class SignInPages(InboxBase):
    """The sign-in pages and the one-time links printed at start-up."""

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

    def _link_used_up(self, visitor: _Visitor) -> HTMLResponse:
        return self._message(
            visitor,
            "Sign-in link used up",
            "This sign-in link was already used or has expired. Run `signoff web "
            "login-link` for a new one.",
            status=410,
            link="/login",
        )

    async def token_page(self, request: Request, token: str) -> Response:
        visitor = await self._visitor(request)
        login = await self.tokens.peek(token, self.clock.now())
        if login is None:
            return self._link_used_up(visitor)
        return self._html(visitor, "login_token.html", token=token, login=login)

    async def token_submit(self, request: Request, token: str) -> Response:
        visitor = await self._visitor(request)
        form = await _form(request)
        if visitor.fresh or not visitor.session.check_csrf(form.get("csrf")):
            return self._csrf_refusal(visitor)
        login = await self.tokens.redeem(token, self.clock.now())
        if login is None or self._fingerprint("link", login) is None:
            return self._link_used_up(visitor)
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
