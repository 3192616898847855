"""The `signoff_allow_similar` modal: Approve + allow similar, in Slack.

The fields, what they are prefilled with and how they become a grant are bot.core.similar's
(the web inbox and Teams share them); this module draws them as Block Kit and reads the
submitted view back. `private_metadata` carries the request id and the risk the grant
covers (the item's own), so the submission needs nothing from the card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.slack._blocks import ALLOW_SIMILAR, MAX_INPUT, Block, plain, section
from adapters.slack._mrkdwn import escape
from bot.core.domain import ApprovalRequest
from bot.core.learning import STANDING_CHANNEL
from bot.core.similar import SimilarForm
from routing import Risk

CALLBACK = ALLOW_SIMILAR
WHEN = "when"
TTL = "ttl"
MAX_USES = "max_uses"
REASON = "reason"
ALLOW_HIGH = "allow_high"
TYPED = (WHEN, TTL, MAX_USES, REASON)
"""The text inputs, by block id (= action id = the form's field name)."""
STALE = "This form is out of date: use the card's button again."


def modal(
    request: ApprovalRequest, form: SimilarForm, *, external_id: str | None = None
) -> dict[str, Any]:
    """The modal prefilled with `form` (bot.core.similar.prefilled, or what was typed), its
    refusal, if any, on top."""
    action = request.current_action
    blocks: list[Block] = [
        section(
            f"*{escape(action.summary)}*\n"
            f"Approves this item and, until the grant ends, every `{escape(action.kind)}` "
            f"request of `{escape(request.agent_id)}` that needs one approval, is at most "
            f"{escape(form.max_risk)} risk and matches the condition, as your vote "
            f"(channel `{STANDING_CHANNEL}`)."
        )
    ]
    if form.refusal:
        blocks.append(section(f"🚫 *Refused:* {escape(form.refusal)} Nothing was recorded."))
    blocks += [
        _text(
            WHEN,
            "Condition (CEL, like a routing rule)",
            form.when,
            "Leave empty for every such request.",
            multiline=True,
            optional=True,
        ),
        _text(TTL, "For how long", form.ttl, "30m, 2h, 1d: at most 30d."),
        _text(MAX_USES, "At most this many uses", form.max_uses, "A whole number."),
        _text(REASON, "Reason", form.reason, "Shown with every use.", multiline=True),
    ]
    if request.risk is Risk.HIGH:
        blocks.append(_allow_high(form.allow_high))
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": CALLBACK,
        "private_metadata": json.dumps(
            {"request_id": request.id, "max_risk": form.max_risk}, separators=(",", ":")
        ),
        "title": plain("Allow similar", 24),
        "submit": plain("Approve + allow", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }
    if external_id:
        view["external_id"] = external_id[:255]
    return view


def _text(
    block_id: str,
    label: str,
    value: str,
    hint: str,
    *,
    multiline: bool = False,
    optional: bool = False,
) -> Block:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": block_id,
        "multiline": multiline,
        "max_length": MAX_INPUT,
    }
    if value:
        element["initial_value"] = value[:MAX_INPUT]
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "hint": plain(hint, 2000),
        "element": element,
    }


_HIGH_OPTION = {"text": plain("Allow high risk (top tier only)", 75), "value": "on"}


def _allow_high(ticked: bool) -> Block:
    element: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": ALLOW_HIGH,
        "options": [_HIGH_OPTION],
    }
    if ticked:
        element["initial_options"] = [_HIGH_OPTION]
    return {
        "type": "input",
        "block_id": ALLOW_HIGH,
        "optional": True,
        "label": plain("High risk", 2000),
        "element": element,
    }


def parse_metadata(view: Mapping[str, Any]) -> tuple[str, str] | None:
    """(request id, risk the grant covers) from the modal's `private_metadata`."""
    try:
        meta = json.loads(view.get("private_metadata") or "")
        return str(meta["request_id"]), str(meta["max_risk"])
    except (ValueError, KeyError, TypeError):
        return None


def submitted(view: Mapping[str, Any], max_risk: str) -> dict[str, str]:
    """The submitted fields as bot.core.similar.read takes them (the web form's names)."""
    values = (view.get("state") or {}).get("values") or {}

    def state(block_id: str) -> Mapping[str, Any]:
        found = (values.get(block_id) or {}).get(block_id)
        return found if isinstance(found, Mapping) else {}

    fields = {"max_risk": max_risk}
    for block_id in TYPED:
        fields[block_id] = str(state(block_id).get("value") or "")
    ticked = state(ALLOW_HIGH).get("selected_options") or []
    if any(isinstance(o, Mapping) and o.get("value") == "on" for o in ticked):
        fields["allow_high"] = "on"
    return fields


def errors(form: SimilarForm) -> dict[str, str]:
    """`form.errors` by the block that shows each; an error of a field this modal has no
    input for (a forged risk) becomes the form's refusal instead."""
    shown = {name: problem for name, problem in form.errors.items() if name in TYPED}
    stray = [problem for name, problem in form.errors.items() if name not in TYPED]
    if stray:
        form.refusal = " ".join(stray)
    return shown
