"""Sign-in through the organization's identity provider: OpenID Connect, authorization code
flow with PKCE (S256), for the web inbox.

The relying party is small on purpose: discovery, the authorization redirect, the code
exchange and the ID token checks (signature against the provider's JWKS, issuer, audience,
authorized party, expiry, issue time and nonce). JOSE itself (JWS, JWK, JWT claims) is done
by joserfc. What must survive the round trip through the provider (state, nonce, PKCE
verifier, where to go after) travels in an HMAC-signed cookie, so the callback may land on
any replica.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from adapters.web.sessions import SignedJson

log = logging.getLogger("signoff.web.oidc")

PENDING_COOKIE = "signoff_oidc"
CALLBACK_PATH = "/login/oidc/callback"
START_PATH = "/login/oidc"
# Only asymmetric signatures: the ID token must come from whoever holds the provider's key.
ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MAX_IDENTITY = 200
_PENDING_CONTEXT = b"signoff.web.oidc.pending.v1"
# An unknown key id makes the provider's JWKS be fetched again (key rotation), at most this
# often, so a stream of forged tokens cannot make Signoff hammer the provider.
_JWKS_REFRESH = 60.0


class OidcError(Exception):
    """A sign-in the identity provider did not vouch for. The message is safe to show."""


@dataclass(frozen=True)
class OidcSettings:
    """`web.oidc` with the client secret read from the environment (never logged)."""

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: Sequence[str] = ("openid", "email", "profile")
    identity_claim: str = "email"
    # Clock skew tolerated on exp and iat.
    leeway: timedelta = timedelta(seconds=30)
    pending_ttl: timedelta = timedelta(minutes=10)

    @property
    def label(self) -> str:
        """What the login button names: the issuer's host."""
        return urlsplit(self.issuer).netloc or self.issuer

    @property
    def fingerprint(self) -> str:
        """Binds sessions to this provider and client: changing either ends them."""
        raw = f"oidc\n{self.issuer}\n{self.client_id}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class PendingLogin:
    """One sign-in on its way through the provider."""

    state: str
    nonce: str
    verifier: str
    target: str
    expires: int

    @classmethod
    def new(cls, target: str, now: datetime, ttl: timedelta) -> PendingLogin:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            target=target,
            expires=int((now + ttl).timestamp()),
        )

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class PendingCodec:
    """Signs pending sign-ins into a cookie value and reads them back (None if altered,
    expired or malformed)."""

    def __init__(self, secret: bytes) -> None:
        self._sealed = SignedJson(secret, _PENDING_CONTEXT)

    def encode(self, pending: PendingLogin) -> str:
        return self._sealed.seal(
            {
                "s": pending.state,
                "n": pending.nonce,
                "v": pending.verifier,
                "t": pending.target,
                "e": pending.expires,
            }
        )

    def decode(self, value: str | None, now: datetime) -> PendingLogin | None:
        data = self._sealed.open(value)
        if data is None:
            return None
        try:
            pending = PendingLogin(
                state=str(data["s"]),
                nonce=str(data["n"]),
                verifier=str(data["v"]),
                target=str(data["t"]),
                expires=int(data["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return pending if pending.expires > now.timestamp() else None


@dataclass(frozen=True)
class OidcIdentity:
    """Who the provider vouched for: `value` of the identity claim, and a display name."""

    value: str
    name: str


def _identity(claims: Mapping[str, Any], claim: str) -> OidcIdentity:
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise OidcError(f"the ID token has no {claim} claim to sign in with")
    value = value.strip()
    if len(value) > MAX_IDENTITY or not value.isprintable():
        raise OidcError(f"the ID token's {claim} claim is not a usable name")
    if claim == "email":
        if claims.get("email_verified") is False:
            raise OidcError("the identity provider has not verified this email address")
        # Mail systems treat addresses case-insensitively; reviewer ids must match anyway.
        value = value.lower()
    name = claims.get("name")
    display = name.strip()[:MAX_IDENTITY] if isinstance(name, str) and name.strip() else value
    return OidcIdentity(value, display)


class OidcClient:
    """The relying party of one `web.oidc` configuration.

    Discovery and JWKS are fetched on first use and cached; a failed fetch is not cached, so
    a provider that was down works again at the next sign-in.
    """

    def __init__(self, settings: OidcSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0

    def _http(self) -> httpx.AsyncClient:
        # Sign-ins are rare: a client per call needs no lifecycle of its own.
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot fetch the identity provider's %s from %s: %s", what, url, exc)
            raise OidcError(f"cannot fetch the identity provider's {what}") from exc
        if not isinstance(data, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, checked to be the configured issuer's.

        Raises OidcError when it cannot be fetched or does not fit.
        """
        if self._metadata is not None:
            return self._metadata
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._get_json(url, "discovery document")
        if data.get("issuer") != self.settings.issuer:
            raise OidcError(
                f"the discovery document names issuer {data.get('issuer')!r}, "
                f"not {self.settings.issuer!r}"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(data.get(key), str):
                raise OidcError(f"the discovery document has no {key}")
        self._metadata = data
        return data

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        metadata = await self.metadata()
        data = await self._get_json(str(metadata["jwks_uri"]), "signing keys (JWKS)")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcError("the identity provider's signing keys (JWKS) are malformed") from exc
        self._keys = keys
        self._keys_fetched = time.monotonic()
        return keys

    async def authorization_url(self, pending: PendingLogin) -> str:
        """Where to send the browser to sign in. Raises OidcError (discovery failed)."""
        metadata = await self.metadata()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": " ".join(self.settings.scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pending.challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = str(metadata["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def _exchange(self, code: str, pending: PendingLogin) -> str:
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": pending.verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.settings.client_secret
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if secret is None:
            form["client_id"] = self.settings.client_id
        elif "client_secret_basic" in methods:
            # RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
            pair = f"{quote_plus(self.settings.client_id)}:{quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form["client_id"] = self.settings.client_id
            form["client_secret"] = secret
        try:
            async with self._http() as http:
                response = await http.post(
                    str(metadata["token_endpoint"]),
                    data=form,
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            log.warning("cannot reach the identity provider's token endpoint: %s", exc)
            raise OidcError("cannot reach the identity provider's token endpoint") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error", response.status_code) if isinstance(body, dict) else ""
            raise OidcError(f"the identity provider refused the sign-in code ({error})")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        return id_token

    async def _decode(self, id_token: str) -> jwt.Token:
        algorithms = [
            alg
            for alg in (await self.metadata()).get("id_token_signing_alg_values_supported")
            or ["RS256"]
            if alg in ALGORITHMS
        ]
        if not algorithms:
            raise OidcError("the identity provider signs ID tokens with no algorithm allowed")
        keys = await self._key_set()
        try:
            try:
                return jwt.decode(id_token, keys, algorithms=algorithms)
            except InvalidKeyIdError:
                if time.monotonic() - self._keys_fetched < _JWKS_REFRESH:
                    raise
                keys = await self._key_set(refresh=True)
                return jwt.decode(id_token, keys, algorithms=algorithms)
        except BadSignatureError as exc:
            raise OidcError("the ID token's signature does not verify") from exc
        except InvalidKeyIdError as exc:
            raise OidcError("the ID token is signed with a key the provider does not list") from exc
        except JoseError as exc:
            raise OidcError(f"the ID token is malformed ({exc.error})") from exc
        except ValueError as exc:
            raise OidcError("the ID token is malformed") from exc

    def _check_claims(self, claims: dict[str, Any], pending: PendingLogin, now: datetime) -> None:
        settings = self.settings
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=int(settings.leeway.total_seconds()),
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": pending.nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise OidcError("the ID token has expired") from exc
        except MissingClaimError as exc:
            raise OidcError(f"the ID token lacks the claim {exc.claim}") from exc
        except InvalidClaimError as exc:
            raise OidcError(f"the ID token's {exc.claim} claim is wrong") from exc
        # OpenID Connect Core 3.1.3.7: with several audiences, azp names this client.
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != settings.client_id:
            raise OidcError("the ID token's azp claim is wrong")

    async def redeem(self, code: str, pending: PendingLogin, now: datetime) -> OidcIdentity:
        """Exchange the code (with the PKCE verifier) and check the ID token it brings.

        Raises OidcError for every refusal: the provider refusing the code (a replayed or
        foreign code), a bad signature, a wrong issuer, audience or nonce, an expired token.
        """
        id_token = await self._exchange(code, pending)
        token = await self._decode(id_token)
        self._check_claims(token.claims, pending, now)
        return _identity(token.claims, self.settings.identity_claim)
