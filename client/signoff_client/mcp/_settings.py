"""What both MCP processes read before they start: Signoff's address and key from the
environment, the agent the key must belong to, and the environment an upstream may see."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from signoff_client.errors import SignoffError

if TYPE_CHECKING:
    # Loaded on use: `signoff --help` builds the `mcp` commands without paying for httpx.
    from signoff_client._client import AsyncSignoffClient

DEFAULT_URL = "http://127.0.0.1:8000"
SECRET_PREFIX = "SIGNOFF_"
MISSING_SDK = "the MCP SDK is not installed: install signoff[mcp] (or signoff-client[mcp])"


class McpSetupError(SignoffError):
    """The process cannot start: a missing key, a key of another agent, a bad option."""


@dataclass(frozen=True)
class SignoffAccess:
    url: str
    api_key: str

    def client(self) -> AsyncSignoffClient:
        from signoff_client._client import AsyncSignoffClient

        return AsyncSignoffClient(self.url, self.api_key)


def signoff_access(environ: Mapping[str, str] | None = None) -> SignoffAccess:
    """`SIGNOFF_URL` (default http://127.0.0.1:8000) and `SIGNOFF_API_KEY`, which is required."""
    env = os.environ if environ is None else environ
    key = env.get("SIGNOFF_API_KEY", "").strip()
    if not key:
        raise McpSetupError("SIGNOFF_API_KEY is not set: the agent's Signoff API key is needed")
    url = env.get("SIGNOFF_URL", "").strip() or DEFAULT_URL
    if not re.match(r"^https?://", url):
        raise McpSetupError(f"SIGNOFF_URL must be an http(s) URL, got {url!r}")
    return SignoffAccess(url=url.rstrip("/"), api_key=key)


async def check_agent(signoff: AsyncSignoffClient, agent: str) -> None:
    """Refuse to start unless the key is `agent`'s: every request would otherwise be filed,
    audited and routed under another agent's name than the one the operator configured."""
    from signoff_client._client import AuthenticationError, RequestNotFound

    try:
        await signoff.agent(agent)
    except AuthenticationError as exc:
        raise McpSetupError("SIGNOFF_API_KEY is not a valid Signoff API key") from exc
    except RequestNotFound as exc:
        raise McpSetupError(
            f"--agent {agent}: SIGNOFF_API_KEY belongs to another agent than {agent!r}"
        ) from exc


def upstream_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The gateway's environment without any `SIGNOFF_*` variable: the key stays here."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.upper().startswith(SECRET_PREFIX)}
