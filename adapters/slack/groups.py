"""`SlackUserGroups`: who is in a Slack user group, read with `usergroups.users.list`."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack._mrkdwn import is_user_group
from bot.core.errors import DeliveryError


class SlackUserGroups:
    """Implements `bot.core.groups.GroupSource` for `slack:S…` reviewers (needs the
    `usergroups:read` scope)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    def is_group(self, identity: str) -> bool:
        return is_user_group(identity)

    async def members(self, group: str) -> frozenset[str]:
        usergroup = group.removeprefix("slack:")
        try:
            response = await self.client.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            raise DeliveryError(f"Slack usergroups.users.list {usergroup}: {error}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"Slack usergroups.users.list {usergroup}: {exc!r}") from exc
        return frozenset(f"slack:{user}" for user in response.get("users") or [])
