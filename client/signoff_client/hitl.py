"""Human-in-the-loop formats agents already speak, translated to and from Signoff.

Pure functions over JSON values; nothing here imports LangGraph, so the same translation runs
in the agent's process (`signoff_client.langgraph`) and inside Signoff (the `langgraph_server`
resume target):

- `Verdict`: what a waiting agent resumes with, built from a resume webhook (CONTRACT 7).
- Interrupt values a graph may be paused on, and for each the Signoff action it asks about
  (`action_for`) and the answer in its own shape (`answer_for`):

  ========================  ===========================================  ====================
  kind                      interrupt value                              answer
  ========================  ===========================================  ====================
  ``signoff``               ``{"signoff_request_id": ..., ...}``         the verdict (dict)
  ``hitl``                  langchain ``HITLRequest`` (batched mode)     ``{"decisions": [..]}``
  ``hitl_call``             langchain ``ToolApprovalRequest`` (per_call) one ``Decision``
  ``agent_inbox``           ``[HumanInterrupt, ...]``                    ``[HumanResponse, ..]``
  ========================  ===========================================  ====================

A foreign interrupt becomes one Signoff request whose action is ``{"kind": <tool name, or
"tool_calls" for several>, "summary": ..., "payload": {"tool_calls": [{"name", "args"}]}}``;
a reviewer's modify edits those calls. The answer is matched to the interrupt by the hash of
that action, so no mapping needs storing anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from signoff_client.canonical import canonical_json, sha256_hex

GATE_KEY = "signoff_request_id"
"""The key that marks an interrupt raised by Signoff's own gate (`signoff_client.langgraph`)."""

APPROVED = frozenset({"approved", "modified"})

InterruptKind = Literal["signoff", "hitl", "hitl_call", "agent_inbox"]

# The vote verdicts that decide each final status; the verdict's rationale is the newest of them.
_DECIDING = {
    "approved": ("approve", "modify", "respond"),
    "modified": ("modify",),
    "rejected": ("reject",),
    "reversed": ("reverse",),
}


class Verdict(BaseModel):
    """The human's answer as a waiting agent receives it.

    `action` is the action the agent may execute if `approved` (the reviewer's edit, if
    any); `action_sha256` is its canonical-JSON hash, the one the votes bind to.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str
    status: str
    action: dict[str, Any] = Field(default_factory=dict)
    modified_action: dict[str, Any] | None = None
    action_sha256: str = ""
    votes: list[dict[str, Any]] = Field(default_factory=list)
    rationale: str = ""
    decided_at: str | None = None
    event: str = "request.resolved"
    # The reviewer's answer to the request's `question` (verdict `respond`), else None.
    response: Any = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def approved(self) -> bool:
        """True for `approved` and `modified`: the agent may execute `action`."""
        return self.status in APPROVED

    @property
    def payload(self) -> dict[str, Any]:
        """The payload of the action to execute (the reviewer's edit, if any)."""
        payload = self.action.get("payload", {})
        return dict(payload) if isinstance(payload, Mapping) else {}


def action_sha256(action: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(dict(action)))


def verdict_from_webhook(body: Mapping[str, Any]) -> Verdict:
    """The verdict a resume webhook body (CONTRACT section 7) carries.

    Raises KeyError or TypeError for a body that is not a Signoff event.
    """
    data = body["data"]
    votes = [dict(v) for v in data.get("votes") or []]
    modified = data.get("modified_action")
    return Verdict(
        request_id=data["id"],
        status=data["status"],
        action=dict(modified or data["action"]),
        modified_action=dict(modified) if modified else None,
        action_sha256=data.get("action_sha256") or "",
        votes=votes,
        rationale=_rationale(data["status"], votes),
        decided_at=data.get("decided_at"),
        event=str(body.get("type", "request.resolved")),
        response=data.get("response"),
    )


def verdict_from_answer(answer: Mapping[str, Any], action: Mapping[str, Any]) -> Verdict:
    """The verdict of a request Signoff decided at once (`approved` or `rejected` on submit)."""
    return Verdict(
        request_id=answer["id"],
        status=answer["status"],
        action=dict(action),
        action_sha256=action_sha256(action),
        rationale=", ".join(answer.get("reasons") or []),
        decided_at=answer.get("created_at"),
    )


def _rationale(status: str, votes: Sequence[Mapping[str, Any]]) -> str:
    deciding = _DECIDING.get(status, ())
    for vote in reversed(votes):
        if vote.get("verdict") in deciding and vote.get("rationale"):
            return str(vote["rationale"])
    return ""


def denial_message(verdict: Verdict) -> str:
    """A sentence for the model (or a workflow) saying why the action must not run."""
    who = next(
        (v for v in reversed(verdict.votes) if v.get("verdict") in ("reject", "reverse")), None
    )
    if verdict.status == "expired":
        text = "Expired in Signoff without a verdict"
    elif verdict.status == "cancelled":
        text = "Cancelled in Signoff"
    elif who is not None:
        text = (
            f"{verdict.status.capitalize()} in Signoff by {who.get('name') or who.get('reviewer')}"
        )
    else:
        text = f"{verdict.status.capitalize()} in Signoff"
    if verdict.rationale:
        text += f": {verdict.rationale}"
    return f"{text} ({verdict.request_id})"


# -- interrupt values --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    name: str
    args: dict[str, Any]
    allowed: frozenset[str]
    description: str
    original: Mapping[str, Any]


_ALL_DECISIONS = frozenset({"approve", "edit", "reject", "respond"})
_INBOX_FLAGS = {
    "allow_accept": "approve",
    "allow_edit": "edit",
    "allow_respond": "respond",
    "allow_ignore": "ignore",
}


def interrupt_kind(value: Any) -> InterruptKind | None:
    """Which of the known formats an interrupt value is in, or None."""
    if isinstance(value, Mapping):
        if isinstance(value.get(GATE_KEY), str):
            return "signoff"
        if isinstance(value.get("action_requests"), list) and isinstance(
            value.get("review_configs"), list
        ):
            return "hitl"
        if value.get("type") == "tool_approval" and isinstance(value.get("name"), str):
            return "hitl_call"
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(item, Mapping)
            and isinstance(item.get("action_request"), Mapping)
            and isinstance(item.get("config"), Mapping)
            for item in value
        )
    ):
        return "agent_inbox"
    return None


def _allowed_from_schema(schema: Mapping[str, Any] | None) -> frozenset[str]:
    """The decision types a per-call interrupt's `response_schema` admits (all, if unknown)."""
    if not schema:
        return _ALL_DECISIONS
    mapping = schema.get("discriminator", {}).get("mapping")
    if isinstance(mapping, Mapping) and mapping:
        return frozenset(str(k) for k in mapping)
    kind = schema.get("properties", {}).get("type", {})
    if "const" in kind:
        return frozenset({str(kind["const"])})
    if isinstance(kind.get("enum"), list) and kind["enum"]:
        return frozenset(str(k) for k in kind["enum"])
    return _ALL_DECISIONS


def _calls(value: Any, schema: Mapping[str, Any] | None = None) -> list[_Call]:
    kind = interrupt_kind(value)
    if kind == "hitl":
        configs = {c.get("action_name"): c for c in value["review_configs"]}
        calls = []
        for index, request in enumerate(value["action_requests"]):
            config = value["review_configs"][index] if index < len(value["review_configs"]) else {}
            if config.get("action_name") != request["name"]:
                config = configs.get(request["name"], {})
            calls.append(
                _Call(
                    name=str(request["name"]),
                    args=dict(request.get("args") or {}),
                    allowed=frozenset(config.get("allowed_decisions") or _ALL_DECISIONS),
                    description=str(request.get("description") or ""),
                    original=request,
                )
            )
        return calls
    if kind == "hitl_call":
        return [
            _Call(
                name=str(value["name"]),
                args=dict(value.get("args") or {}),
                allowed=_allowed_from_schema(schema),
                description=str(value.get("description") or ""),
                original=value,
            )
        ]
    if kind == "agent_inbox":
        return [
            _Call(
                name=str(item["action_request"].get("action", "")),
                args=dict(item["action_request"].get("args") or {}),
                allowed=frozenset(
                    d for flag, d in _INBOX_FLAGS.items() if item["config"].get(flag)
                ),
                description=str(item.get("description") or ""),
                original=item["action_request"],
            )
            for item in value
        ]
    return []


def _short(args: Mapping[str, Any], limit: int = 160) -> str:
    text = json.dumps(args, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def action_for(value: Any, response_schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Signoff action a foreign interrupt (hitl, hitl_call, agent_inbox) asks about.

    Deterministic: the same interrupt value always gives the same action (and hash).
    Raises ValueError for a value in none of those formats.
    """
    calls = _calls(value, response_schema)
    if not calls:
        raise ValueError("not a HumanInTheLoopMiddleware or Agent Inbox interrupt")
    names = [c.name for c in calls]
    summary = "; ".join(f"{c.name} {_short(c.args)}" for c in calls)
    return {
        "kind": (names[0] if len(calls) == 1 else "tool_calls")[:200] or "tool_call",
        "summary": summary[:2000],
        "payload": {"tool_calls": [{"name": c.name, "args": c.args} for c in calls]},
    }


def description_for(value: Any) -> str:
    """The descriptions a foreign interrupt carries, for the reviewer's context."""
    return "\n\n".join(c.description for c in _calls(value) if c.description)


def interrupt_matches(
    value: Any, data: Mapping[str, Any], response_schema: Mapping[str, Any] | None = None
) -> bool:
    """True if this interrupt is the one the resume webhook's `data` decides."""
    kind = interrupt_kind(value)
    if kind is None:
        return False
    if kind == "signoff":
        return bool(value[GATE_KEY] == data.get("id"))
    original = data.get("action")
    if not isinstance(original, Mapping):
        return False
    return action_sha256(action_for(value, response_schema)) == action_sha256(original)


def _edits(verdict: Verdict, calls: Sequence[_Call]) -> list[tuple[str, dict[str, Any]]] | str:
    """The calls as the reviewer left them, or why the modification cannot be read."""
    if verdict.status != "modified":
        return [(c.name, c.args) for c in calls]
    edited = verdict.payload.get("tool_calls")
    if not isinstance(edited, list) or len(edited) != len(calls):
        return f"the modified payload must keep 'tool_calls' with {len(calls)} call(s)"
    result = []
    for item in edited:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("args", {}), Mapping)
        ):
            return "each modified tool call needs a 'name' (text) and 'args' (an object)"
        result.append((str(item["name"]), dict(item.get("args") or {})))
    return result


def answer_for(
    value: Any, verdict: Verdict, response_schema: Mapping[str, Any] | None = None
) -> Any:
    """The resume value for an interrupt, in the interrupt's own format.

    Approved → approve / accept; modified → edit for the calls the reviewer changed (approve
    for the others); rejected, expired, cancelled → reject (or the format's nearest refusal)
    with a message naming who and why. An edit a call does not allow becomes a refusal, never
    a silent approval of the unedited call.
    Raises ValueError for an interrupt in none of the known formats.
    """
    kind = interrupt_kind(value)
    if kind is None:
        raise ValueError("not an interrupt Signoff knows how to answer")
    if kind == "signoff":
        return verdict.model_dump()
    calls = _calls(value, response_schema)
    edits = _edits(verdict, calls) if verdict.approved else None
    answers = []
    for index, call in enumerate(calls):
        if verdict.approved and verdict.response is not None and "respond" in call.allowed:
            # The reviewer answered instead of letting the tool run: the answer stands in
            # for its result (LangChain's "respond", the agent inbox's "response").
            answers.append(_respond(kind, _answer_text(verdict.response)))
        elif isinstance(edits, str):
            refusal = f"{denial_message(verdict)}; {edits}"
            answers.append(_refuse(kind, call, refusal))
        elif edits is None:
            answers.append(_refuse(kind, call, denial_message(verdict)))
        else:
            name, args = edits[index]
            answers.append(_accept(kind, call, name, args, verdict))
    if kind == "hitl":
        return {"decisions": answers}
    if kind == "hitl_call":
        return answers[0]
    return answers


def _accept(
    kind: InterruptKind, call: _Call, name: str, args: dict[str, Any], verdict: Verdict
) -> dict[str, Any]:
    changed = (name, args) != (call.name, call.args)
    inbox = kind == "agent_inbox"
    if changed and "edit" not in call.allowed:
        return _refuse(
            kind,
            call,
            f"The reviewer changed {call.name}, which does not accept edits "
            f"({verdict.request_id}): {verdict.rationale}".rstrip(": "),
        )
    if changed:
        if inbox:
            return {"type": "edit", "args": {"action": name, "args": args}}
        return {"type": "edit", "edited_action": {"name": name, "args": args}}
    if "approve" in call.allowed:
        return {"type": "accept", "args": dict(call.original)} if inbox else {"type": "approve"}
    if "edit" in call.allowed:
        if inbox:
            return {"type": "edit", "args": {"action": name, "args": args}}
        return {"type": "edit", "edited_action": {"name": name, "args": args}}
    return _refuse(kind, call, f"Approved in Signoff, but {call.name} allows no approval")


def _answer_text(response: Any) -> str:
    return response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)


def _respond(kind: InterruptKind, message: str) -> dict[str, Any]:
    if kind == "agent_inbox":
        return {"type": "response", "args": message}
    return {"type": "respond", "message": message}


def _refuse(kind: InterruptKind, call: _Call, message: str) -> dict[str, Any]:
    if kind == "agent_inbox":
        if "respond" in call.allowed or "ignore" not in call.allowed:
            return {"type": "response", "args": message}
        return {"type": "ignore", "args": None}
    # `respond` reads as the tool's own (successful) result, so it is only the fallback.
    if "reject" in call.allowed or "respond" not in call.allowed:
        return {"type": "reject", "message": message}
    return {"type": "respond", "message": message}
