"""The HTTP client handling every HTTP resume target shares."""

from __future__ import annotations

import httpx


class HttpTarget:
    """Holds a borrowed client (never closed here) or lazily makes and owns one."""

    def __init__(self, client: httpx.AsyncClient | None, timeout: float) -> None:
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout

    async def aclose(self) -> None:
        """Close the client this target created; a borrowed client stays open."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        # Redirects are never followed: an agent registers the final URL it wants called.
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client
