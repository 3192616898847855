"""What `/signoff` does: the reviewer's queue, help, or stopping and starting an agent.

The answer goes back through the command's response URL (ephemeral, except a stop or a
start, which the channel sees); the engine decides whether the reviewer may stop an agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond

from adapters.slack import cards
from adapters.slack._commands import USAGE, Command, parse_command
from adapters.slack._mrkdwn import escape
from adapters.slack._payloads import CHANNEL, Actor, actor_of, sentence
from bot.core.domain import ApprovalRequest
from bot.core.errors import NotAllowed, NotFound
from bot.core.ports import ReviewService
from bot.core.views import CardView

log = logging.getLogger("signoff.slack")


@dataclass(frozen=True)
class Reply:
    """The answer to one `/signoff`: ephemeral unless `in_channel`."""

    text: str
    in_channel: bool = False
    blocks: list[dict[str, Any]] | None = None


async def answer(
    body: Mapping[str, Any],
    respond: AsyncRespond | None,
    review: ReviewService,
    views: Callable[[ApprovalRequest], CardView],
) -> None:
    """Answer the `/signoff` in `body` (a slash command payload)."""
    command = parse_command(str(body.get("text") or ""))
    reply = await _reply(command, actor_of(body), review, views)
    if respond is None or respond.response_url is None:
        log.warning("/signoff without a response_url; answer dropped: %r", reply.text)
        return
    try:
        await respond(
            text=reply.text,
            blocks=reply.blocks,
            response_type="in_channel" if reply.in_channel else "ephemeral",
        )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("could not answer /signoff: %r", exc)


async def _reply(
    command: Command,
    actor: Actor,
    review: ReviewService,
    views: Callable[[ApprovalRequest], CardView],
) -> Reply:
    if command.verb == "pending":
        items = await review.pending_for(actor.reviewer)
        shown = [views(r) for r in items[: cards.PENDING_SHOWN]]
        message = cards.pending_message(shown, len(items))
        return Reply(message.text, blocks=message.blocks)
    if command.verb == "help":
        return Reply(f"{command.problem}\n{USAGE}" if command.problem else USAGE)
    try:
        review.check_stop_authority(actor.reviewer)
    except NotAllowed as exc:
        return Reply(f"🚫 Nothing changed. {sentence(exc.message)}")
    stopping = command.verb == "stop"
    try:
        await review.set_stopped(
            command.agent,
            stopping,
            actor=actor.reviewer,
            reason=command.reason,
            channel=CHANNEL,
        )
    except NotFound:
        return Reply(f"🚫 Nothing changed. There is no agent `{escape(command.agent)}`.")
    agent = escape(command.agent)
    if stopping:
        text = (
            f"🛑 <@{actor.user_id}> stopped agent `{agent}`: {escape(command.reason)}\n"
            f"Its pending requests are rejected, and its new ones until "
            f"`/signoff start {agent}`."
        )
    else:
        text = f"▶️ <@{actor.user_id}> started agent `{agent}` again."
    return Reply(text, in_channel=True)
