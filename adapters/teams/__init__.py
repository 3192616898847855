"""Microsoft Teams: Adaptive Card approvals on botbuilder-core (CONTRACT section 8).

- `cards`, `batch_cards`, `queue_card`: pure Adaptive Card 1.5 builders (no botbuilder
  import) for an item, a batch and a reviewer's personal queue.
- `TeamsChannel` (`channel`): the `bot.core.ports.Channel` that posts a card as a new thread in
  the tier's Teams channel (or in a reviewer's 1:1 chat for `dm:` targets), edits it with
  `update_activity` and replies with reminders.
- `TeamsBot` (`bot`): Universal Actions (`adaptiveCard/action`) and text commands, talking
  to the engine only through `bot.core.ports.ReviewService`.
- `TeamsAuth` (`auth`): Bot Framework JWT validation, or none for local testing.
- `messages_endpoint` (`endpoint`): the FastAPI handler for `POST /api/messages`.

Every botbuilder import of Signoff lives in this folder; the rest of Signoff sees only the
`Channel` port, `TeamsChannel.create`, `TeamsBot(review_service, view)` and the endpoint.

Moving to the Microsoft 365 Agents SDK
--------------------------------------
botbuilder-python was archived at the end of 2025; its successor is the Microsoft 365
Agents SDK for Python. A move touches only this folder and the two dependency lines:

1. Dependencies: `botbuilder-core` -> `microsoft-agents-hosting-core`,
   `botbuilder-integration-aiohttp` -> `microsoft-agents-hosting-aiohttp`, plus
   `microsoft-agents-authentication-msal` (outbound tokens) and
   `microsoft-agents-activity` (the `Activity`, `ConversationParameters`, `Mention`, ...
   models; they are pydantic there, not msrest, so `Activity().deserialize(body)` and
   `serializer_helper` become pydantic validation and dumping by alias).
2. `auth.py`: `ConfigurationBotFrameworkAuthentication` and its `APP_ID`/`APP_PASSWORD`/
   `APP_TENANTID` object are gone in the SDK. Outbound credentials come from its MSAL
   connection manager (`MsalAuth`) configured with the same client id, secret and tenant;
   inbound tokens are checked by the SDK's JWT validation (the aiohttp host ships it as
   `jwt_authorization_middleware`; the FastAPI route would call the same validator). The
   `TeamsAuth.authenticate` contract (401 on a bad token, before any bot code runs) and the
   test hook `openid_metadata_url` (where signing keys are fetched) stay.
3. `channel.py`: the SDK's channel-service adapter keeps `create_conversation`,
   `continue_conversation` and `TurnContext.update_activity`. The ref stored in the
   database (service URL, conversation id, activity id, tenant id) is SDK-neutral, so cards
   posted before the move can still be edited after it. Connector errors arrive as aiohttp
   errors rather than msrest's `HttpOperationError`; `_call` maps their status and
   Retry-After the same way.
4. `bot.py`: port `TeamsBot` to the SDK's activity handler (or an `AgentApplication`
   route for `adaptiveCard/action` invokes and messages); `AdaptiveCardInvokeResponse`
   and `InvokeResponse` keep their wire shape (`statusCode`, `type`, `value`).
5. `endpoint.py`: keep parsing the body and calling `adapter.process_activity`.

`cards.py`, `bot/server/teams.py`, the tests' fake connector and every Teams-shaped test
payload stay as they are: the wire protocol (Bot Connector REST API, Adaptive Cards,
Universal Actions, Bot Framework JWTs) does not change. Check exact class names against
the SDK release you move to; they were still settling during 2025-2026.
"""

from adapters.teams.auth import TeamsAuth, TeamsCredentials, Unauthorized
from adapters.teams.bot import TeamsBot
from adapters.teams.channel import TeamsChannel
from adapters.teams.endpoint import PATH, messages_endpoint

__all__ = [
    "PATH",
    "TeamsAuth",
    "TeamsBot",
    "TeamsChannel",
    "TeamsCredentials",
    "Unauthorized",
    "messages_endpoint",
]
