"""The Slack modals of a card's buttons: Details (everything the agent sent, as far as 50
blocks allow) and the verdict form (`signoff_verdict`: a rationale, the edited payload of a
modify, the answer to the agent's question, the reject reason). Approve + allow similar has
its own modal (adapters.slack.similar_modal).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from adapters.slack._blocks import (
    DETAILS_CALLBACK,
    MAX_BLOCKS,
    MAX_INPUT,
    MAX_TEXT,
    MODIFIED_PAYLOAD,
    RATIONALE,
    REJECT_OPTION,
    RESPONSE,
    VERDICT_CALLBACK,
    Block,
    plain,
    section,
)
from adapters.slack._first_screen import first_screen, votes_text
from adapters.slack._mrkdwn import as_text, chunks, clip, date, escape, pretty_json
from bot.core.answers import choices, wants_text
from bot.core.domain import ApprovalRequest, Verdict
from bot.core.views import CardView


def details_modal(view: CardView) -> dict[str, Any]:
    """The card's first screen, then everything the agent sent as far as 50 blocks allow,
    then a link to the inbox."""
    request, inbox_url = view.request, view.inbox_url
    blocks: list[Block] = first_screen(view)
    truncated = False
    for title, body in _detail_parts(request):
        # Each part gets a few blocks, so one huge part cannot push the others out.
        if len(body) > _PART_BLOCKS:
            body, truncated = body[:_PART_BLOCKS], True
        for index, piece in enumerate(body):
            if len(blocks) >= MAX_BLOCKS - 1:
                truncated = True
                break
            blocks.append(section(f"*{title}*\n{piece}" if index == 0 else piece))
    if truncated:
        where = f"<{inbox_url}|the web inbox>" if inbox_url else "the web inbox"
        blocks.append(section(f"✂️ Shortened to fit Slack. See everything in {where}."))
    return {
        "type": "modal",
        "callback_id": DETAILS_CALLBACK,
        "title": plain("Request details", 24),
        "close": plain("Close", 24),
        "blocks": blocks[:MAX_BLOCKS],
    }


_PART_BLOCKS = 3

_CONTEXT_ORDER = (
    ("summary", "Summary"),
    ("goal", "Goal"),
    ("recommendation", "Recommendation"),
    ("alternatives", "Alternatives"),
    ("conversation", "Conversation"),
    ("actions_attempted", "Actions attempted"),
    ("failure_reason", "Failure reason"),
    ("customer", "Customer"),
    ("transaction", "Transaction"),
    ("policies", "Policies"),
)


def _detail_parts(request: ApprovalRequest) -> list[tuple[str, list[str]]]:
    context = dict(request.context)
    action = request.current_action
    parts: list[tuple[str, Any, Callable[[Any], str]]] = [
        ("Action", f"`{escape(action.kind)}` {escape(action.summary)}", str)
    ]
    for key, title in _CONTEXT_ORDER:
        value = context.pop(key, None)
        render: Callable[[Any], str] = _conversation if key == "conversation" else _render
        parts.append((title, value, render))
    parts += [(escape(key), value, _render) for key, value in context.items()]
    parts.append(("Labels", dict(request.labels), _render))
    parts.append(("Action payload", dict(request.action.payload), _render))
    if request.modified_action is not None:
        parts.append(("Edited payload", dict(request.modified_action.payload), _render))
    if request.votes:
        parts.append(("Votes", votes_text(request.votes).removeprefix("*Votes*\n"), str))
    if request.history:
        moves = [
            f"• {escape(m.from_tier or 'start')} → {escape(m.to_tier)} ({m.reason}) · {date(m.at)}"
            for m in request.history
        ]
        parts.append(("Tier history", "\n".join(moves), str))
    found: list[tuple[str, list[str]]] = []
    for title, value, render in parts:
        if value in (None, "", [], {}):
            continue
        text = render(value)
        budget = MAX_TEXT - len(title) - 4
        if text.startswith("```"):
            inner = text[3:-3]
            pieces = [f"```{piece}```" for piece in chunks(inner, budget - 6)]
        else:
            pieces = list(chunks(text, budget))
        found.append((title, pieces))
    return found


def _render(value: Any) -> str:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(f"• {escape(str(v))}" for v in value)
    return "```" + escape(pretty_json(value)) + "```"


def _conversation(value: Any) -> str:
    if not isinstance(value, list):
        return _render(value)
    lines = []
    for turn in value:
        if isinstance(turn, Mapping):
            who = turn.get("role") or turn.get("author") or turn.get("from") or "?"
            said = turn.get("content") or turn.get("text") or turn.get("message") or ""
            lines.append(f"*{escape(as_text(who))}:* {escape(as_text(said))}")
        else:
            lines.append(escape(as_text(turn)))
    return "\n".join(lines)


_VERDICT_WORDS = {
    Verdict.APPROVE: ("Approve", "Approve request"),
    Verdict.REJECT: ("Reject", "Reject request"),
    Verdict.MODIFY: ("Approve edited", "Modify request"),
    Verdict.CONFIRM: ("Confirm", "Confirm request"),
    Verdict.REVERSE: ("Reverse", "Reverse request"),
    Verdict.RESPOND: ("Send answer", "Answer the question"),
}


def editable_payload(payload: Mapping[str, Any]) -> str | None:
    """The payload as JSON that fits a text input (3,000 characters), or None."""
    for indent in (2, None):
        text = pretty_json(dict(payload), indent=indent)
        if len(text) <= MAX_INPUT:
            return text
    return None


def verdict_modal(
    request: ApprovalRequest,
    verdict: Verdict,
    *,
    inbox_url: str | None = None,
    external_id: str | None = None,
) -> dict[str, Any]:
    """The `signoff_verdict` modal: a rationale, and for modify the edited payload."""
    submit, title = _VERDICT_WORDS[verdict]
    summary = (
        f"*{escape(request.current_action.summary)}*\n"
        f"{escape(request.agent_id)} · {request.risk.value} risk · "
        f"{len(request.approvals_for_current_action())} of {request.approvals_required} approvals"
    )
    blocks: list[Block] = [section(summary)]
    if verdict is Verdict.MODIFY:
        current = editable_payload(request.current_action.payload)
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": MODIFIED_PAYLOAD,
            "multiline": True,
            "max_length": MAX_INPUT,
        }
        hint = "A JSON object. It replaces the action's payload; the agent executes this one."
        if current is not None:
            element["initial_value"] = current
        else:
            hint = "The current payload is too large to edit here; use the web inbox."
            if inbox_url:
                blocks.append(section(f"<{inbox_url}|Edit it in the web inbox>"))
        blocks.append(
            {
                "type": "input",
                "block_id": MODIFIED_PAYLOAD,
                "label": plain("Edited payload (JSON)", 2000),
                "hint": plain(hint, 2000),
                "element": element,
            }
        )
    if verdict is Verdict.RESPOND:
        blocks += _answer_blocks(request)
    if verdict is Verdict.REJECT and request.reject_options:
        blocks.append(
            {
                "type": "input",
                "block_id": REJECT_OPTION,
                "optional": True,
                "label": plain("Reason", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": REJECT_OPTION,
                    "placeholder": plain("Pick the reason", 150),
                    "options": [_option(o) for o in request.reject_options[:100]],
                },
            }
        )
    # Optional where the reason may come from elsewhere (an answer, a picked reject reason);
    # a rationale the rules require is still refused empty when the form is submitted.
    optional = verdict is Verdict.RESPOND or (
        verdict is Verdict.REJECT and bool(request.reject_options)
    )
    blocks.append(
        {
            "type": "input",
            "block_id": RATIONALE,
            "optional": optional,
            "label": plain("Rationale", 2000),
            "hint": plain("Why? It is recorded in the audit trail and sent to the agent.", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": RATIONALE,
                "multiline": True,
                "max_length": MAX_INPUT,
            },
        }
    )
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": VERDICT_CALLBACK,
        "private_metadata": json.dumps({"request_id": request.id, "verdict": verdict.value}),
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }
    if external_id:
        view["external_id"] = external_id[:255]
    return view


def _option(text: str) -> dict[str, Any]:
    return {"text": plain(text, 75), "value": text[:150]}


def _answer_blocks(request: ApprovalRequest) -> list[Block]:
    """The question and the answer input: a pick list for a string `enum`, else text."""
    blocks: list[Block] = []
    if request.question:
        blocks.append(section(f"*The agent asks*\n{escape(request.question)}"))
    picks = choices(request.response_schema)
    element: dict[str, Any]
    if picks is not None:
        element = {
            "type": "static_select",
            "action_id": RESPONSE,
            "placeholder": plain("Pick an answer", 150),
            "options": [_option(p) for p in picks[:100]],
        }
        hint = "Pick one."
    else:
        element = {
            "type": "plain_text_input",
            "action_id": RESPONSE,
            "multiline": True,
            "max_length": MAX_INPUT,
        }
        hint = (
            "Your answer is sent to the agent."
            if wants_text(request.response_schema)
            else "Answer as JSON: "
            + clip(pretty_json(dict(request.response_schema or {}), indent=None), 1800)
        )
    blocks.append(
        {
            "type": "input",
            "block_id": RESPONSE,
            "label": plain("Your answer", 2000),
            "hint": plain(hint, 2000),
            "element": element,
        }
    )
    return blocks
