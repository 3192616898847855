"""Adaptive Cards (1.5) for batch review in Microsoft Teams.

A batch card lists same-kind items waiting at one tier, each with an `Input.Toggle` whose id
is `pick:<request id>` (value "true" when ticked), one `Input.Text` `rationale`, and the
`Action.Execute` verbs `batch_approve` / `batch_reject` carrying `data.batch_id`. Teams
merges the inputs into the action's data, so the click says which items were ticked.
Items decided meanwhile show their outcome and no toggle; with none left to decide the card
has no inputs and no actions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.teams._elements import (
    MAX_CARD_BYTES,
    MAX_INPUT,
    RATIONALE,
    RISK_ICON,
    VERSION,
    Element,
    Tone,
    banner,
    clip,
    confidence,
    execute,
    stamp,
    text_block,
    verbatim,
)
from bot.core.domain import ApprovalRequest, BatchItemResult, Status, Verdict
from bot.core.views import BatchView
from bot.core.wording import Wording
from routing import default_policy

BATCH_VERBS: Mapping[str, Verdict] = {
    "batch_approve": Verdict.APPROVE,
    "batch_reject": Verdict.REJECT,
}
PICK = "pick:"
MAX_ITEM_SUMMARY = 150


def batch_card(view: BatchView, *, message: str | None = None, tone: Tone = "good") -> Element:
    """The batch card as it should look now; `message` adds the clicker's result banner.

    Teams refuses messages over about 28 KB: summaries are shortened first, then the newest
    items are left to "and N more" (they stay on their own cards and in the web inbox).
    """
    shown = len(view.items)
    attempts = [(limit, shown) for limit in (MAX_ITEM_SUMMARY, 60)]
    attempts += [(40, count) for count in range(shown - 5, 0, -5)]
    for summary_limit, count in attempts:
        built = _card(view, message, tone, summary_limit, count)
        if len(json.dumps(built, ensure_ascii=False).encode("utf-8")) <= MAX_CARD_BYTES:
            return built
    return _card(view, message, tone, 40, 1)


def _card(
    view: BatchView, message: str | None, tone: Tone, summary_limit: int, shown: int
) -> Element:
    batch = view.batch
    waiting = len(view.waiting) + view.more
    if view.closed:
        title = f"✅ All {batch.kind} items at {batch.tier} decided"
    else:
        title = f"{waiting} {batch.kind} item{'s' if waiting != 1 else ''} waiting at {batch.tier}"
    body: list[Element] = [verbatim(title, 300, weight="Bolder", size="Medium")]
    if message:
        body.append(banner(message, tone))
    if view.closed:
        body.append(text_block("Every item on this card has been decided.", isSubtle=True))
    else:
        body.append(
            text_block(
                "Tick the items you have checked, then approve or reject them together: each "
                "gets its own vote and audit record. High-risk and two-person items are never "
                "listed here.",
                isSubtle=True,
            )
        )
    # Without the engine's words (a view built by hand) the deadline's consequence is
    # unknown: the default policy still words amounts, reasons and outcomes.
    wording = view.wording or Wording(default_policy())
    body += [_item(view, wording, request, summary_limit) for request in view.items[:shown]]
    more = view.more + max(len(view.items) - shown, 0)
    if more and not view.closed:
        body.append(text_block(f"… and {more} more in the web inbox.", isSubtle=True))
    card: Element = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "fallbackText": f"{title} (decide them in the web inbox)",
        "body": body,
    }
    if not view.closed:
        body.append(
            {
                "type": "Input.Text",
                "id": RATIONALE,
                "label": "Rationale (required to reject)",
                "isMultiline": True,
                "maxLength": MAX_INPUT,
                "placeholder": "Why? It is recorded on every selected item's vote.",
            }
        )
        data = {"batch_id": batch.id}
        card["actions"] = [
            execute("batch_approve", "Approve selected", data, "positive"),
            execute("batch_reject", "Reject selected", data, "destructive"),
        ]
    return card


def _item(
    view: BatchView, wording: Wording, request: ApprovalRequest, summary_limit: int
) -> Element:
    """One item in the words of its own card: amount as money, why a person sees it, the
    agent's confidence and what its deadline will do (in each reader's own time zone)."""
    amount = wording.amount(request) or "no amount"
    why = ", ".join(reason.title for reason in wording.reasons(request))
    facts = f"{request.agent_id} · {amount} · {confidence(request)} confident"
    if why:
        facts += f" · {why}"
    items: list[Element] = [
        verbatim(
            f"{RISK_ICON[request.risk]} {request.current_action.summary}",
            summary_limit,
            weight="Bolder",
        ),
        verbatim(facts, 300, isSubtle=True, size="Small"),
    ]
    deadline = wording.deadline(request) if view.wording is not None else None
    if deadline is not None and view.selectable(request):
        items.append(text_block(f"⏰ {deadline.sentence(stamp(deadline.at))}", size="Small"))
    link = view.link(request.id)
    if link:
        items.append(text_block(f"[Full context]({link})", size="Small"))
    if view.selectable(request):
        items.append(
            {
                "type": "Input.Toggle",
                "id": f"{PICK}{request.id}",
                "title": "Select",
                "value": "false",
                "valueOn": "true",
                "valueOff": "false",
            }
        )
    elif request.status is Status.PENDING:
        items.append(text_block(f"⤴️ Now at tier {request.tier}: decide it on its own card."))
    else:
        items.append(verbatim(wording.outcome_line(request), 300, weight="Bolder"))
    return {"type": "Container", "separator": True, "items": items}


def picked_ids(data: Mapping[str, Any]) -> list[str]:
    """The request ids whose toggle was on in a click's data, in card order."""
    return [
        key.removeprefix(PICK)
        for key, value in data.items()
        if key.startswith(PICK) and len(key) > len(PICK) and str(value).lower() == "true"
    ]


def results_message(
    verdict: Verdict, results: Sequence[BatchItemResult], summaries: Mapping[str, str]
) -> tuple[str, Tone]:
    """The clicker's banner: how many were recorded, and each refusal with its reason."""
    recorded = sum(1 for r in results if r.recorded)
    refused = [r for r in results if not r.recorded]
    done = "approved" if verdict is Verdict.APPROVE else "rejected"
    text = f"Recorded: {recorded} item{'s' if recorded != 1 else ''} {done}."
    if refused:
        reasons = "; ".join(
            f"{clip(summaries.get(r.request_id) or r.request_id, 80)} "
            f"({(r.message or r.code or 'refused').rstrip('.')})"
            for r in refused
        )
        text += f" Not recorded for {len(refused)}: {reasons}."
    return clip(text, 1500), ("good" if not refused else "warning")
