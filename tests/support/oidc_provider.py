"""A small OpenID Connect provider for tests, served over real HTTP on loopback.

It publishes a discovery document and a JWKS, answers the authorization endpoint by
signing in `user` at once (no login form), and redeems codes at the token endpoint with
the checks a real provider makes: the client's secret (HTTP Basic), the redirect URI, the
PKCE verifier (S256), and each code once. ID tokens are RS256-signed with a real key.

`Tamper` changes what the next ID tokens say, so tests can see Signoff refuse a wrong
issuer, a wrong audience, an expired token, a foreign signature or a wrong nonce::

    provider = OidcProvider(now=clock.now)
    async with provider.server.serve(provider.app()):
        provider.tamper = Tamper(issuer="https://evil.example")
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.support.loopback import LoopbackServer

CLIENT_ID = "signoff-inbox"
CLIENT_SECRET = "s3cret-for-the-loopback-provider"
KID = "loopback-1"


@dataclass(frozen=True)
class Tamper:
    """Deviations of the next ID tokens from what a correct provider would send."""

    issuer: str | None = None
    audience: str | list[str] | None = None
    lifetime: timedelta = timedelta(minutes=5)
    issued_ago: timedelta = timedelta(0)
    foreign_key: bool = False
    nonce: str | None = None


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: dict[str, Any]
    used: bool = False


@dataclass
class OidcProvider:
    now: Callable[[], datetime]
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "00u-olga",
            "email": "Olga@Example.com",
            "email_verified": True,
            "name": "Olga <Ops>",
        }
    )
    redirect_uris: list[str] = field(default_factory=list)
    tamper: Tamper = field(default_factory=Tamper)
    server: LoopbackServer = field(default_factory=LoopbackServer)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"})
        # Same kid, another key: a token it signs must fail the signature check.
        self.impostor = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"})
        self.grants: dict[str, _Grant] = {}
        self.token_requests: list[dict[str, str]] = []

    @property
    def issuer(self) -> str:
        return self.server.url

    def _id_token(self, grant: _Grant) -> str:
        tamper = self.tamper
        issued = self.now() - tamper.issued_ago
        claims = {
            **grant.user,
            "iss": tamper.issuer or self.issuer,
            "aud": tamper.audience if tamper.audience is not None else grant.client_id,
            "iat": int(issued.timestamp()),
            "exp": int((issued + tamper.lifetime).timestamp()),
            "nonce": tamper.nonce if tamper.nonce is not None else grant.nonce,
        }
        key = self.impostor if tamper.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": KID}, claims, key)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return dict(KeySet([self.key]).as_dict(private=False))

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") not in self.redirect_uris:
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            if "openid" not in q.get("scope", "").split():
                return JSONResponse({"error": "invalid_scope"}, status_code=400)
            code = secrets.token_urlsafe(24)
            self.grants[code] = _Grant(
                client_id=CLIENT_ID,
                redirect_uri=q["redirect_uri"],
                challenge=q.get("code_challenge", ""),
                nonce=q.get("nonce", ""),
                user=dict(self.user),
            )
            back = urlencode({"code": code, "state": q.get("state", "")})
            return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            raw = parse_qs((await request.body()).decode(), keep_blank_values=True)
            form = {k: v[0] for k, v in raw.items()}
            self.token_requests.append(form)
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            try:
                client, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                client = secret = ""
            if scheme != "Basic" or (unquote_plus(client), unquote_plus(secret)) != (
                CLIENT_ID,
                CLIENT_SECRET,
            ):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.grants.get(form.get("code", ""))
            if form.get("grant_type") != "authorization_code" or grant is None or grant.used:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            grant.used = True  # a code works once, even when the rest of the request is wrong
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if form.get("redirect_uri") != grant.redirect_uri or challenge.decode() != (
                grant.challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": self._id_token(grant),
                }
            )

        return app
