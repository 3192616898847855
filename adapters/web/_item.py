"""What the first screen of an item says, and what a modify changed.

The first screen must let a reviewer decide without scrolling: what the agent wants to do,
the amount, why a person sees it, the agent's recommendation and confidence, who must
decide and what the deadline will do. After a modify, the header shows the new values
and the changes, old → new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.domain import ApprovalRequest, ReasonText, Verdict, as_utc
from bot.core.wording import Change, Wording, current_amount, payload_changes

# Context keys drawn on the first screen, and those drawn in their own sections below.
FIRST_KEYS = ("summary", "goal", "recommendation", "alternatives", "failure_reason")
BELOW_KEYS = ("conversation", "actions_attempted", "customer", "transaction", "policies")


@dataclass(frozen=True)
class DeadlineText:
    """ "Rejected automatically at" <time> "if no one decides", split around the time."""

    before: str
    at: datetime
    when: str
    after: str


@dataclass(frozen=True)
class FirstScreen:
    summary: str
    amount: str | None
    # The amount before a modify changed the payload's `amount` (None: unchanged).
    amount_was: str | None
    reasons: tuple[ReasonText, ...]
    recommendation: Any
    confidence: str
    who_decides: str
    deadline: DeadlineText | None
    changes: tuple[Change, ...]
    changed_by: str | None


def changes(item: ApprovalRequest) -> tuple[Change, ...]:
    """What reviewers changed in the agent's payload (empty without a modify)."""
    if item.modified_action is None:
        return ()
    return payload_changes(item.action.payload, item.modified_action.payload)


def _changed_by(item: ApprovalRequest) -> str | None:
    names = [v.name for v in item.votes if v.verdict is Verdict.MODIFY]
    return ", ".join(dict.fromkeys(names)) or None


def _amount_change(item: ApprovalRequest, wording: Wording) -> tuple[str | None, str | None]:
    """The amount to show (as a modify left it, bot.core.wording.current_amount) and the one
    it replaced, if a modify changed it."""
    shown = wording.amount(item)
    if current_amount(item) != item.amount:
        return shown, wording.money(item.amount, item.currency)
    return shown, None


def deadline_text(item: ApprovalRequest, wording: Wording, now: datetime) -> DeadlineText | None:
    deadline = wording.deadline(item)
    if deadline is None:
        return None
    at = as_utc(deadline.at)
    same_day = at.astimezone(wording.zone).date() == as_utc(now).astimezone(wording.zone).date()
    when = wording.clock(at) if same_day else wording.moment(at)
    before, _, after = deadline.sentence("\0").partition("\0")
    return DeadlineText(before, at, when, after)


def first_screen(item: ApprovalRequest, wording: Wording, now: datetime) -> FirstScreen:
    found = changes(item)
    amount, amount_was = _amount_change(item, wording)
    return FirstScreen(
        summary=item.current_action.summary,
        amount=amount,
        amount_was=amount_was,
        reasons=wording.reasons(item),
        recommendation=item.context.get("recommendation"),
        confidence=wording.percent(item.confidence),
        who_decides=wording.who_decides(item),
        deadline=deadline_text(item, wording, now),
        changes=found,
        changed_by=_changed_by(item),
    )
