"""Where an outbox message goes (its destination) and in which lane it waits.

The outbox delivers concurrently under three caps (`OutboxCaps`): all deliveries in flight
on one replica, those of one lane, and those to one destination. Lanes keep cards and
alerts from ever waiting behind webhooks; the destination cap keeps one slow or hanging
receiver (an agent's callback origin, a Slack channel, a Teams conversation) from taking
more than its share, so it delays only its own deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.core.domain import OutboxKind

LaneName = Literal["webhooks", "cards", "alerts"]

LANE_KINDS: Mapping[LaneName, tuple[OutboxKind, ...]] = {
    "cards": (
        OutboxKind.POST_CARD,
        OutboxKind.UPDATE_CARDS,
        OutboxKind.REMIND,
        OutboxKind.POST_BATCH,
        OutboxKind.UPDATE_BATCH,
    ),
    "alerts": (OutboxKind.ALERT,),
    "webhooks": (OutboxKind.WEBHOOK,),
}


def lane_of(kind: OutboxKind) -> LaneName:
    for lane, kinds in LANE_KINDS.items():
        if kind in kinds:
            return lane
    raise ValueError(f"outbox kind {kind.value} has no lane")


@dataclass(frozen=True)
class OutboxCaps:
    """How many deliveries may be in flight at once on one replica.

    `max_in_flight` bounds them all; `lanes` bounds each lane; `per_destination` bounds
    each destination. The lane caps may add up to more than `max_in_flight`, but each lane
    keeps at least one slot however busy the others are (checked by `problem`).
    """

    max_in_flight: int = 32
    per_destination: int = 4
    lanes: Mapping[LaneName, int] = field(
        default_factory=lambda: {"webhooks": 16, "cards": 12, "alerts": 2}
    )

    def lane(self, name: LaneName) -> int:
        return self.lanes.get(name, 1)

    def problem(self) -> str | None:
        """Why these caps would let a lane starve, or None when they cannot."""
        total = sum(self.lane(name) for name in LANE_KINDS)
        for name in LANE_KINDS:
            others = total - self.lane(name)
            if others >= self.max_in_flight:
                return (
                    f"the other lanes' caps add up to {others}, which leaves lane {name} "
                    f"no slot of max_in_flight {self.max_in_flight}"
                )
        return None


def destination(kind: OutboxKind, payload: Mapping[str, Any], request_id: str | None) -> str:
    """The receiver a message goes to, as the per-destination cap counts it.

    Webhooks: the callback URL's origin. Cards: the channel and its target (a Slack
    channel id, a Teams conversation), or the `destination` the engine noted for edits and
    reminders. Alerts: the alerts channel of the platform.
    """
    noted = payload.get("destination")
    if isinstance(noted, str) and noted:
        return noted
    if kind is OutboxKind.WEBHOOK:
        return "webhook:" + _origin(str(payload.get("url", "")))
    if kind is OutboxKind.POST_CARD:
        return f"{payload.get('channel', '')}:{payload.get('target', '')}"
    if kind is OutboxKind.ALERT:
        return f"alert:{payload.get('channel', '')}"
    if kind in (OutboxKind.POST_BATCH, OutboxKind.UPDATE_BATCH):
        return f"batch:{payload.get('batch_id', '')}"
    return f"request:{request_id or ''}"


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port or default}"
