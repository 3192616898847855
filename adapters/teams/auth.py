"""Who may talk to `POST /api/messages`: Bot Framework JWT validation through botbuilder.

With an app id, every inbound activity must carry a bearer token the Bot Framework
signed for this bot; botbuilder's `ConfigurationBotFrameworkAuthentication` checks the
issuer, the signature against the published keys (OpenID metadata), the audience (our app
id), the expiry and the `serviceurl` claim. Anything it refuses is `Unauthorized` (401).

`verify=False` (config `teams.auth: none`) lets every request in without a token. It exists
for local testing against a fake connector and logs a warning when it is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)

from bot.core.errors import SignoffError

log = logging.getLogger("signoff.teams")


class Unauthorized(SignoffError):
    """The request has no valid Bot Framework token for this bot (answer 401)."""


class AuthUnavailable(SignoffError):
    """The signing keys could not be fetched to check a token (answer 503, try again)."""


@dataclass(frozen=True)
class TeamsCredentials:
    """The Azure Bot registration: app id and client secret, and the tenant when the bot is
    single-tenant (new registrations are; multi-tenant ones leave it empty)."""

    app_id: str = ""
    app_password: str = ""
    tenant_id: str | None = None


def bot_configuration(
    credentials: TeamsCredentials, openid_metadata_url: str | None = None
) -> SimpleNamespace:
    """The configuration object `ConfigurationBotFrameworkAuthentication` reads.

    `openid_metadata_url` replaces the Bot Framework's OpenID metadata (where the token
    signing keys are published) and switches botbuilder to its parameterized mode with the
    public-cloud values for everything else. Tests use it to serve their own keys; a real
    deployment leaves it unset.
    """
    single_tenant = bool(credentials.tenant_id and credentials.app_id)
    config: dict[str, Any] = {
        "APP_ID": credentials.app_id,
        "APP_PASSWORD": credentials.app_password,
        "APP_TYPE": "SingleTenant" if single_tenant else "MultiTenant",
    }
    if single_tenant:
        config["APP_TENANTID"] = credentials.tenant_id
    if openid_metadata_url:
        config.update(
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=openid_metadata_url,
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
            TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
            TO_CHANNEL_FROM_BOT_LOGIN_URL=AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX,
            TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=(
                AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
            ),
            OAUTH_URL=AuthenticationConstants.OAUTH_URL,
            CALLER_ID=CallerIdConstants.public_azure_channel,
        )
    return SimpleNamespace(**config)


CONNECTOR_TIMEOUT = 10.0
"""Seconds a Bot Connector call may take (msrest's default is 100, longer than an outbox
claim's lease)."""


class _SingleTryConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    """Connector clients that make each call once, briefly, and hand every answer back.

    msrest's default transport retries 5xx itself, and urllib3 under it also retries a
    throttled PUT, sleeping the whole Retry-After in between. That would hold an outbox
    worker for minutes (past its claim lease) on a single card; Signoff's outbox already
    retries with backoff, jitter and Retry-After, durably, so the transport must not.
    """

    def __init__(self, inner: ConnectorFactory) -> None:
        self._inner = inner

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        client = await self._inner.create(service_url, audience)
        # The transport already holds this very Retry object, so change it in place.
        policy = client.config.retry_policy
        policy.retries = 0
        policy.policy.raise_on_status = False
        client.config.connection.timeout = CONNECTOR_TIMEOUT
        return client


class _SingleTryAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """`inner`, with every connector factory it hands out made single-try."""

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        result: AuthenticateRequestResult = await self._inner.authenticate_request(
            activity, auth_header
        )
        if result.connector_factory is not None:
            result.connector_factory = _SingleTryConnectorFactory(result.connector_factory)
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _SingleTryConnectorFactory(self._inner.create_connector_factory(claims_identity))

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return await self._inner.create_user_token_client(claims_identity)

    def get_originating_audience(self) -> str:
        audience: str = self._inner.get_originating_audience()
        return audience


class TeamsAuth:
    """Authenticates inbound activities and makes the credentials for outbound calls."""

    def __init__(
        self,
        credentials: TeamsCredentials,
        *,
        verify: bool = True,
        openid_metadata_url: str | None = None,
    ) -> None:
        if verify and not credentials.app_id:
            # botbuilder treats an empty app id as "authentication disabled": refuse rather
            # than silently accept unsigned requests.
            raise ValueError("Bot Framework authentication needs the bot's app id")
        self.credentials = credentials
        self.verify = verify
        self.framework = _SingleTryAuthentication(
            ConfigurationBotFrameworkAuthentication(
                bot_configuration(credentials, openid_metadata_url)
            )
        )
        if not verify:
            log.warning(
                "Teams authentication is OFF (teams.auth: none): anyone who can reach "
                "POST /api/messages can vote as any Teams user. Use it only for local testing."
            )

    @property
    def app_id(self) -> str:
        return self.credentials.app_id

    async def authenticate(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """Check the request's bearer token (unless verification is off).

        Raises Unauthorized for a missing, malformed, expired, foreign or forged token, and
        AuthUnavailable when the signing keys cannot be fetched.
        """
        if not self.verify:
            return self._unverified()
        if not auth_header:
            raise Unauthorized("no Authorization header")
        try:
            result: AuthenticateRequestResult = await self.framework.authenticate_request(
                activity, auth_header
            )
        except PermissionError as exc:
            raise Unauthorized(str(exc) or "token refused") from exc
        except OSError as exc:  # requests' network errors: the key endpoint is unreachable
            raise AuthUnavailable(f"cannot fetch the Bot Framework signing keys: {exc}") from exc
        except Exception as exc:  # botbuilder and PyJWT raise many types for bad tokens
            raise Unauthorized(f"{type(exc).__name__}: {exc}") from exc
        return result

    def _unverified(self) -> AuthenticateRequestResult:
        claims: dict[str, Any] = {}
        if self.app_id:
            claims = {
                AuthenticationConstants.AUDIENCE_CLAIM: self.app_id,
                AuthenticationConstants.APP_ID_CLAIM: self.app_id,
            }
        identity = ClaimsIdentity(claims, True, AuthenticationConstants.ANONYMOUS_AUTH_TYPE)
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        result.caller_id = None
        result.connector_factory = self.framework.create_connector_factory(identity)
        return result
