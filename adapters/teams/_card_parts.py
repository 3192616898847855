"""The inputs and buttons of a live Teams card: the rationale box, the verdict buttons and
the ShowCards behind them (Answer…, Reject…, Modify…, Approve + allow similar…), and the
Details section of the full context as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.teams._elements import (
    ALLOW_SIMILAR,
    EMPTY,
    MAX_EDITABLE_PAYLOAD,
    MAX_INPUT,
    MAX_SECTION,
    MAX_TEXT,
    MODIFIED_PAYLOAD,
    RATIONALE,
    REJECT_OPTION,
    RESPONSE,
    Element,
    clip,
    execute,
    label,
    pretty_json,
    runs,
    show_card,
    text_block,
    verbatim,
)
from bot.core.answers import choices, wants_text
from bot.core.domain import ApprovalRequest
from bot.core.learning import STANDING_CHANNEL
from bot.core.similar import SimilarForm, offered, prefilled
from bot.core.views import CardKind, CardView
from routing import Risk


def rationale_input(request: ApprovalRequest, kind: CardKind) -> Element:
    field: Element = {
        "type": "Input.Text",
        "id": RATIONALE,
        "isMultiline": True,
        "maxLength": MAX_INPUT,
        "placeholder": "Why? It is recorded in the audit trail.",
    }
    if request.risk is Risk.HIGH:
        field["label"] = "Rationale (required: high-risk item)"
        field["isRequired"] = True
        field["errorMessage"] = "Every verdict on a high-risk item needs a rationale."
    elif kind == "review":
        field["label"] = "Rationale (required to reverse)"
    else:
        field["label"] = "Rationale (required to reject or modify)"
    return field


def verdict_actions(view: CardView, similar: SimilarForm | None = None) -> list[Element]:
    """The verdict buttons of a live card (`data` says which request and whose tier), with
    "Approve + allow similar…" where a standing approval could cover items like this one."""
    request = view.request
    data = {"request_id": request.id, "tier": view.tier}
    if view.kind == "review":
        return [
            execute("confirm", "Confirm", data, "positive"),
            execute("reverse", "Reverse", data, "destructive"),
        ]
    actions = [
        execute("approve", "Approve", data, "positive"),
        reject_action(request, data),
        _modify(request, data),
    ]
    if offered(request):
        actions.append(_allow_similar(request, data, similar or prefilled(request)))
    if request.question or request.response_schema:
        actions.insert(0, _respond(request, data))
    return actions


def _allow_similar(request: ApprovalRequest, data: Mapping[str, Any], form: SimilarForm) -> Element:
    """Approve, and approve requests like this one in the clicker's name for a while: the
    form bot.core.similar prefills, checked there when `allow_similar` is clicked."""
    action = request.current_action

    def text(input_id: str, title: str, value: str, **more: Any) -> Element:
        field: Element = {
            "type": "Input.Text",
            "id": input_id,
            "label": title,
            "maxLength": MAX_INPUT,
            **more,
        }
        if value:
            field["value"] = value
        return field

    body: list[Element] = [
        runs(
            ("Approves this item and, until the grant ends, every ", {}),
            (clip(action.kind, 80), {"weight": "Bolder"}),
            (" request of ", {}),
            (clip(request.agent_id, 80), {"weight": "Bolder"}),
            (
                f" that needs one approval, is at most {form.max_risk} risk and matches the "
                f"condition, as your vote (channel {STANDING_CHANNEL}).",
                {},
            ),
        ),
        text(
            "when",
            "Condition (CEL, like a routing rule)",
            form.when,
            isMultiline=True,
            placeholder="Leave empty for every such request.",
        ),
        text(
            "ttl",
            "For how long (30m, 2h, 1d: at most 30d)",
            form.ttl,
            isRequired=True,
            errorMessage="Say for how long, such as 2h.",
        ),
        text(
            "max_uses",
            "At most this many uses",
            form.max_uses,
            isRequired=True,
            errorMessage="Say how many uses, such as 10.",
        ),
        text(
            "reason",
            "Reason (shown with every use)",
            form.reason,
            isMultiline=True,
            isRequired=True,
            errorMessage="Say why: the reason is shown with every use.",
        ),
    ]
    if request.risk is Risk.HIGH:
        body.append(
            {
                "type": "Input.Toggle",
                "id": "allow_high",
                "title": "Allow high risk (top tier only)",
                "valueOn": "on",
                "valueOff": "off",
                "value": "on" if form.allow_high else "off",
            }
        )
    # The risk the grant covers is the item's own; it travels with the click.
    submit = execute(
        ALLOW_SIMILAR,
        "Approve + allow similar",
        {**data, "max_risk": form.max_risk},
        "positive",
    )
    return show_card("Approve + allow similar…", body, [submit])


def _respond(request: ApprovalRequest, data: Mapping[str, Any]) -> Element:
    """Answer the agent's question: a choice set for a string `enum`, else a text box."""
    picks = choices(request.response_schema)
    field: Element
    if picks is not None:
        field = {
            "type": "Input.ChoiceSet",
            "id": RESPONSE,
            "label": "Your answer",
            "isRequired": True,
            "errorMessage": "Pick an answer.",
            "choices": [{"title": clip(p, 150), "value": p} for p in picks[:50]],
        }
    else:
        hint = "" if wants_text(request.response_schema) else " (JSON)"
        field = {
            "type": "Input.Text",
            "id": RESPONSE,
            "label": f"Your answer{hint}",
            "isMultiline": True,
            "isRequired": True,
            "errorMessage": "Type an answer.",
            "maxLength": MAX_INPUT,
        }
    body = [verbatim(request.question or "The agent asks for an answer.", MAX_TEXT), field]
    return show_card("Answer…", body, [execute("respond", "Send answer", data, "positive")])


def reject_action(
    request: ApprovalRequest, data: Mapping[str, Any], option_id: str = REJECT_OPTION
) -> Element:
    """Reject at once, or with a reason picked from the request's `reject_options`."""
    if not request.reject_options:
        return execute("reject", "Reject", data, "destructive")
    pick: Element = {
        "type": "Input.ChoiceSet",
        "id": option_id,
        "label": "Reason",
        "choices": [{"title": clip(o, 150), "value": o} for o in request.reject_options[:50]],
    }
    return show_card("Reject…", [pick], [execute("reject", "Reject", data, "destructive")])


def _modify(request: ApprovalRequest, data: Mapping[str, Any]) -> Element:
    payload = pretty_json(dict(request.current_action.payload))
    if len(payload) > MAX_EDITABLE_PAYLOAD:
        return show_card(
            "Modify…",
            [text_block("This payload is too large to edit in Teams: modify it in the web inbox.")],
        )
    return show_card(
        "Modify…",
        [
            text_block(
                "Edit the action's payload (a JSON object). Approvals given to the old "
                "action no longer count; a rationale is required."
            ),
            {
                "type": "Input.Text",
                "id": MODIFIED_PAYLOAD,
                "label": "Payload",
                "isMultiline": True,
                "value": payload,
                "maxLength": MAX_EDITABLE_PAYLOAD * 2,
            },
        ],
        [execute("modify", "Approve with changes", data, "positive")],
    )


def details(request: ApprovalRequest, budget: int) -> list[Element]:
    """The full context as JSON, section by section, clipped to `budget` characters in all."""
    sections: list[tuple[str, Any]] = [
        ("Request", {"id": request.id, "thread_id": request.thread_id, "domain": request.domain}),
        (f"Action: {request.current_action.kind}", dict(request.current_action.payload)),
    ]
    if request.modified_action is not None:
        sections.append(("Original payload", dict(request.action.payload)))
    sections += [(key, value) for key, value in request.context.items() if value not in EMPTY]
    if request.labels:
        sections.append(("labels", dict(request.labels)))
    items: list[Element] = []
    left = budget
    for title, value in sections:
        text = value if isinstance(value, str) else pretty_json(value)
        if left < 200:
            items.append(text_block("… the rest is in the web inbox.", isSubtle=True))
            break
        shown = clip(text, min(MAX_SECTION, left))
        left -= len(shown)
        items.append(label(title.replace("_", " ").capitalize()))
        items.append(verbatim(shown, MAX_SECTION, fontType="Monospace", size="Small"))
    return items or [text_block("The full context is in the web inbox.", isSubtle=True)]
