"""Block Kit for batch review in Slack: the batch card, its verdict modal, click parsing.

A batch card lists same-kind items waiting at one tier, each in a section with a checkbox
accessory (one option: the request id), and ends with `signoff_batch_approve` /
`signoff_batch_reject` buttons whose value is the batch id. The click's `state.values`
carry the ticked boxes. Items decided meanwhile are drawn with their outcome and no box;
when none is left to decide the card has no buttons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.slack._blocks import (
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_INPUT,
    MAX_TEXT,
    RATIONALE,
    Block,
    SlackMessage,
    button,
    header,
    mrkdwn,
    plain,
    section,
)
from adapters.slack._first_screen import outcome_text
from adapters.slack._mrkdwn import clip, date, escape
from bot.core.domain import ApprovalRequest, BatchItemResult, Status, Verdict
from bot.core.views import BatchView

BATCH_APPROVE = "signoff_batch_approve"
BATCH_REJECT = "signoff_batch_reject"
BATCH_PICK = "signoff_batch_pick"
BATCH_VERDICTS: Mapping[str, Verdict] = {
    BATCH_APPROVE: Verdict.APPROVE,
    BATCH_REJECT: Verdict.REJECT,
}
BATCH_CALLBACK = "signoff_batch_verdict"
PICK_BLOCK = "signoff_pick:"

# Header, intro, "and N more", actions and footer leave room for this many item sections.
MAX_SHOWN = MAX_BLOCKS - 5
_RISK_ICON = {"low": "🟢", "medium": "🟠", "high": "🔴"}


def batch_message(view: BatchView) -> SlackMessage:
    """The batch card as it should look now."""
    batch = view.batch
    kind, tier = escape(batch.kind), escape(batch.tier)
    waiting = len(view.waiting) + view.more
    if view.closed:
        title = f"✅ All {batch.kind} items at {batch.tier} decided"
        intro = "Every item on this card has been decided. Nothing is left to select."
        text = f"All {kind} items at {tier} decided"
    else:
        title = f"{waiting} {batch.kind} item{'s' if waiting != 1 else ''} waiting at {batch.tier}"
        intro = (
            f"Routine *{kind}* items waiting at tier *{tier}*, oldest first. Tick the ones you "
            "have checked, then approve or reject them together: each gets its own vote and "
            "audit record. High-risk and two-person items are never listed here."
        )
        text = f"{waiting} {kind} items waiting at {tier}"
    blocks: list[Block] = [header(title), section(intro)]
    shown = view.items[:MAX_SHOWN]
    blocks += [_item(view, request) for request in shown]
    more = view.more + len(view.items) - len(shown)
    if more and not view.closed:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn(f"…and {more} more in the web inbox.", MAX_FIELD)],
            }
        )
    if not view.closed:
        blocks.append(
            {
                "type": "actions",
                "block_id": "signoff_batch_actions",
                "elements": [
                    button(BATCH_APPROVE, "Approve selected", batch.id, "primary"),
                    button(BATCH_REJECT, "Reject selected", batch.id, "danger"),
                ],
            }
        )
    blocks.append({"type": "context", "elements": [mrkdwn(f"Batch `{batch.id}`", MAX_FIELD)]})
    return SlackMessage(clip(text, MAX_TEXT), blocks)


def _item(view: BatchView, request: ApprovalRequest) -> Block:
    summary = escape(request.current_action.summary)
    link = view.link(request.id)
    name = f"<{link}|{summary}>" if link else summary
    amount = view.amounts.get(request.id)
    what = f"{name} — {escape(amount)}" if amount else name
    why = ", ".join(request.reasons_text)
    line = (
        f"{_RISK_ICON.get(request.risk.value, '•')} *{what}*\n"
        f"{escape(why) + ' · ' if why else ''}{escape(request.agent_id)} · "
        f"{request.confidence:.0%} confident"
    )
    if view.selectable(request):
        due = f" · due {date(request.deadline_at)}" if request.deadline_at else ""
        block = section(clip(line + due, MAX_TEXT))
        block["block_id"] = f"{PICK_BLOCK}{request.id}"[:255]
        block["accessory"] = {
            "type": "checkboxes",
            "action_id": BATCH_PICK,
            "options": [{"text": mrkdwn("Select"), "value": request.id}],
        }
        return block
    if request.status is Status.PENDING:
        state = f"⤴️ now at tier *{escape(request.tier or '—')}*: decide it on its own card"
    else:
        state = outcome_text(request).split("\n", 1)[0]
    return section(clip(f"{line}\n{state}", MAX_TEXT))


def selected_ids(state: Mapping[str, Any] | None) -> list[str]:
    """The request ids ticked on the card, from a click's `state.values` (in card order)."""
    found: list[str] = []
    values = (state or {}).get("values") or {}
    for actions in values.values() if isinstance(values, Mapping) else ():
        for value in actions.values() if isinstance(actions, Mapping) else ():
            if not isinstance(value, Mapping) or value.get("type") != "checkboxes":
                continue
            for option in value.get("selected_options") or []:
                if isinstance(option, Mapping) and option.get("value"):
                    found.append(str(option["value"]))
    return list(dict.fromkeys(found))


def batch_modal(
    batch_id: str,
    verdict: Verdict,
    request_ids: Sequence[str],
    requests: Sequence[ApprovalRequest],
    *,
    external_id: str | None = None,
) -> dict[str, Any]:
    """The `signoff_batch_verdict` modal: one rationale for every selected item.

    `request_ids` (every ticked id) travel in `private_metadata`; `requests` (those found)
    are listed so the reviewer sees what the rationale will be recorded on.
    """
    word = "Approve" if verdict is Verdict.APPROVE else "Reject"
    count = len(request_ids)
    lines = [f"*{word} {count} item{'s' if count != 1 else ''}*"]
    lines += [f"• {escape(r.current_action.summary)}" for r in requests]
    meta = {"batch_id": batch_id, "verdict": verdict.value, "request_ids": list(request_ids)}
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": BATCH_CALLBACK,
        "private_metadata": json.dumps(meta, separators=(",", ":")),
        "title": plain(f"{word} selected", 24),
        "submit": plain(word, 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(clip("\n".join(lines), MAX_TEXT)),
            {
                "type": "input",
                "block_id": RATIONALE,
                "label": plain("Rationale", 2000),
                "hint": plain(
                    "Recorded on every selected item's vote and sent to the agent.", 2000
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": RATIONALE,
                    "multiline": True,
                    "max_length": MAX_INPUT,
                },
            },
        ],
    }
    if external_id:
        view["external_id"] = external_id[:255]
    return view


def parse_batch_metadata(view: Mapping[str, Any]) -> tuple[str, Verdict, list[str]] | None:
    try:
        meta = json.loads(view.get("private_metadata") or "")
        ids = [str(i) for i in meta["request_ids"]]
        return str(meta["batch_id"]), Verdict(meta["verdict"]), ids
    except (ValueError, KeyError, TypeError):
        return None


def results_text(
    verdict: Verdict, results: Sequence[BatchItemResult], summaries: Mapping[str, str]
) -> str:
    """What a batch vote did, per item: how many were recorded, and each refusal with why."""
    recorded = sum(1 for r in results if r.recorded)
    refused = [r for r in results if not r.recorded]
    done = "approved" if verdict is Verdict.APPROVE else "rejected"
    lines = [f"✅ {recorded} item{'s' if recorded != 1 else ''} {done}." if recorded else ""]
    if refused:
        lines.append(f"🚫 Not recorded for {len(refused)}:")
        for result in refused:
            name = escape(summaries.get(result.request_id) or result.request_id)
            why = escape((result.message or result.code or "refused").rstrip("."))
            lines.append(f"• *{name}* — {why}.")
    text = "\n".join(line for line in lines if line)
    return clip(text, MAX_TEXT)
