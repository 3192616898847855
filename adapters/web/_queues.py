"""The inbox's three tabs: waiting for you, waiting on others, decided by you.

"Waiting on others" holds items the reviewer voted on that still await someone else (a
two-person item after their approval); "Decided by you" the finished items they voted
on, found through their newest audit events, so the list costs one query and a read per
item however long the history is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from adapters.web._item import FirstScreen, first_screen
from bot.core.domain import ApprovalRequest, Vote
from bot.core.ports import Repository
from bot.core.wording import Wording

TabKey = Literal["waiting", "others", "decided"]
TAB_LABELS: dict[TabKey, str] = {
    "waiting": "Waiting for you",
    "others": "Waiting on others",
    "decided": "Decided by you",
}
# How far back "Decided by you" looks: this reviewer's newest audit events.
DECIDED_EVENTS = 400
DECIDED_ITEMS = 50
AWAITING_SCAN = 500


def tab_key(value: str | None) -> TabKey:
    if value == "others":
        return "others"
    if value == "decided":
        return "decided"
    return "waiting"


@dataclass(frozen=True)
class Row:
    """One inbox row: the item and the words of its first screen."""

    item: ApprovalRequest
    screen: FirstScreen
    mine: Vote | None = None


def rows(
    items: Sequence[ApprovalRequest], reviewer: str, wording: Wording, now: datetime
) -> list[Row]:
    return [Row(item, first_screen(item, wording, now), my_vote(item, reviewer)) for item in items]


def my_vote(item: ApprovalRequest, reviewer: str) -> Vote | None:
    mine = [v for v in item.votes if v.reviewer == reviewer]
    return mine[-1] if mine else None


async def waiting_on_others(repo: Repository, reviewer: str) -> list[ApprovalRequest]:
    """Items still awaiting a verdict that `reviewer` has voted on, oldest deadline first."""
    awaiting = await repo.list_awaiting(limit=AWAITING_SCAN)
    return [item for item in awaiting if my_vote(item, reviewer) is not None]


async def decided_by(repo: Repository, reviewer: str) -> list[ApprovalRequest]:
    """Finished items `reviewer` voted on, most recently voted first."""
    records = await repo.audit_records(actor=reviewer, last=DECIDED_EVENTS)
    found: list[ApprovalRequest] = []
    seen: set[str] = set()
    for record in reversed(records):
        request_id = record.event.request_id
        if record.event.event != "voted" or request_id is None or request_id in seen:
            continue
        seen.add(request_id)
        item = await repo.get(request_id)
        if item is not None and not item.awaiting_verdict:
            found.append(item)
            if len(found) >= DECIDED_ITEMS:
                break
    return found
