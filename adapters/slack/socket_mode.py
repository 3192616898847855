"""`SlackSocketMode`: hear from Slack over a Socket Mode WebSocket, for hosts that Slack
cannot reach (no public URL, a laptop, behind a firewall).

The same bolt AsyncApp as `POST /slack/events` handles every envelope, so block actions,
view submissions and `/signoff` behave exactly as over HTTP. Slack does not sign socket
envelopes: the connection itself, opened with the app-level token through
`apps.connections.open`, is the proof of origin. slack_sdk's aiohttp client reconnects
when Slack asks it to (`{"type": "disconnect"}`, every few hours) or the socket drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from adapters.slack.app import SlackApp

log = logging.getLogger("signoff.slack.socket")

_CLOSE_TIMEOUT = 5.0


class _Handler(AsyncSocketModeHandler):
    """Bolt's handler, plus what `SlackApp.handle` does for HTTP: an envelope Slack delivers
    again (it does when an ack was lost with a dropped socket) is acknowledged and not
    handled twice, and one that failed before its ack is let through on the retry."""

    def __init__(self, slack: SlackApp, app_token: str, ping_interval: float) -> None:
        super().__init__(
            slack.bolt,
            app_token,
            logger=log,
            web_client=slack.client,
            ping_interval=ping_interval,
        )
        self._slack = slack

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        key = f"envelope:{req.envelope_id}"
        if not self._slack.first_delivery(key):
            log.info("Slack envelope delivered again (retry %s); acknowledged", req.retry_attempt)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        started = time.time()
        response = await run_async_bolt_app(self.app, req)
        if response.status != 200:
            # Nothing acknowledged it (send_async_response only acks a 200): Slack retries.
            self._slack.forget_delivery(key)
        await send_async_response(client, req, response, started)


class SlackSocketMode:
    """Connects `slack` (its bolt app and Web API client) to Slack over Socket Mode.

    `start()` returns at once and connects in the background, retrying every
    `ping_interval` seconds while Slack is unreachable, so the rest of Signoff serves
    meanwhile. The app token is only sent to `apps.connections.open`, never logged.
    """

    def __init__(self, slack: SlackApp, app_token: str, *, ping_interval: float = 10.0) -> None:
        self._slack = slack
        self._app_token = app_token
        self._ping_interval = ping_interval
        self._handler: _Handler | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the socket in the background (needs a running event loop)."""
        if not self._app_token.startswith("xapp-"):
            log.warning(
                "the Slack app token does not start with xapp-: Socket Mode needs an "
                "app-level token with the connections:write scope"
            )
        self._handler = _Handler(self._slack, self._app_token, self._ping_interval)
        # slack_bolt leaves connect_async/close_async unannotated (both return None).
        connect = self._handler.connect_async()  # type: ignore[no-untyped-call]
        self._connecting = asyncio.create_task(connect, name="slack-socket-mode-connect")
        log.info("Slack Socket Mode: connecting")

    async def aclose(self) -> None:
        """Close the socket; envelopes not yet acknowledged are Slack's to deliver again."""
        handler, connecting = self._handler, self._connecting
        self._handler = self._connecting = None
        if handler is None:
            return
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await handler.close_async()  # type: ignore[no-untyped-call]
        except TimeoutError:
            # Slack did not answer the close handshake: drop the connection and stop the
            # client's tasks ourselves (what close() would have done next).
            log.warning("Slack Socket Mode did not close in %.0f s; dropped", _CLOSE_TIMEOUT)
            client = handler.client
            for task in (
                client.message_processor,
                client.current_session_monitor,
                client.message_receiver,
            ):
                if task is not None:
                    task.cancel()
            await client.aiohttp_client_session.close()
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
