"""The audit trail in sentences: "Approved at 2:02 PM via Slack by Ana: PO matches".

Each event keeps its JSON for whoever needs the record itself; the sentence is what a
reviewer reads. Times are the configured zone's (bot.core.wording); rule identifiers become
their titles; a modify lists what it changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.audit_chain import KEYED_EVENT
from bot.core.domain import POLICY_ACTOR, AuditRecord, as_utc, readable
from bot.core.wording import Change, Wording

_CHANNELS: Mapping[str, str] = {
    "web": "the web inbox",
    "slack": "Slack",
    "teams": "Teams",
    "api": "the API",
    "standing": "a standing approval",
    "webhook": "the webhook",
    "cli": "the command line",
    "mcp": "MCP",
}

_VERDICTS: Mapping[str, str] = {
    "approve": "Approved",
    "reject": "Rejected",
    "modify": "Approved with changes",
    "confirm": "Confirmed",
    "reverse": "Reversed",
    "respond": "Answered",
}

_STATUSES: Mapping[str, str] = {
    "approved": "approved",
    "modified": "approved with changes",
    "rejected": "rejected",
    "expired": "expired",
    "cancelled": "cancelled",
    "reversed": "reversed",
}

_TIMEOUTS: Mapping[str, str] = {
    "reject": "rejected automatically",
    "expire": "expired",
    "approve": "approved automatically",
}

_ROUTES: Mapping[str, str] = {
    "autonomous": "Let through without a person",
    "review": "Let through, for a person to check afterwards",
}


def channel_name(channel: str) -> str:
    """ "the web inbox", "Slack", "Teams"... for a vote's or an event's channel."""
    return _CHANNELS.get(channel, channel)


@dataclass(frozen=True)
class EventLine:
    """One audit event as a sentence: `head` "at" the time, then `tail`."""

    record: AuditRecord
    head: str
    tail: str
    day: str
    changes: tuple[Change, ...] = ()

    @property
    def at(self) -> datetime:
        return self.record.event.at

    @property
    def request_id(self) -> str | None:
        return self.record.event.request_id


class AuditWords:
    """Writes audit events as sentences in one policy's titles and one zone's times."""

    def __init__(self, wording: Wording) -> None:
        self.wording = wording

    def lines(self, records: Sequence[AuditRecord]) -> list[EventLine]:
        return [self.line(record) for record in records]

    def line(self, record: AuditRecord) -> EventLine:
        event = record.event
        data = event.data
        head, extra = self._words(event.event, data, event.reason, event.actor)
        tail = ""
        if event.event in _BY_SOMEONE:
            via = _CHANNELS.get(event.channel)
            who = self._who(event.actor, data)
            tail += f" via {via}" if via else ""
            tail += f" by {who}" if who else ""
        tail += extra
        if event.reason and event.event in _WITH_REASON:
            tail += f": {event.reason}"
        changes = tuple(
            Change(str(c.get("path", "")), c.get("old"), c.get("new"))
            for c in data.get("changes") or ()
            if isinstance(c, Mapping)
        )
        day = self.wording.moment(as_utc(event.at)).rsplit(", ", 1)[0]
        return EventLine(record, head, tail, day, changes)

    def _who(self, actor: str, data: Mapping[str, Any]) -> str:
        name = data.get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
        if actor in ("system", POLICY_ACTOR):
            return ""
        if actor.startswith("agent:"):
            return f"agent {actor.removeprefix('agent:')}"
        return actor

    def _rules(self, codes: str | None) -> str:
        titles = []
        for code in (codes or "").split(","):
            if code:
                rule = self.wording.policy.rule(code)
                titles.append(rule.heading if rule else readable(code))
        return ", ".join(titles)

    def _words(
        self, name: str, data: Mapping[str, Any], reason: str | None, actor: str
    ) -> tuple[str, str]:
        """The sentence around the time, for each kind of event."""
        if name == "submitted":
            return "Submitted", f" by {self._who(actor, data)}"
        if name == "routed":
            rules = self._rules(reason)
            why = f": {rules}" if rules else ""
            lane = str(data.get("lane", ""))
            if lane in _ROUTES:
                return _ROUTES[lane], why
            people = int(data.get("approvals_required") or 1)
            needs = "a person" if people == 1 else f"{people} different people"
            return f"Sent to {needs} at tier {data.get('tier')}", why
        if name == "posted":
            where = _CHANNELS.get(str(data.get("channel", "")), "")
            return "Card posted", f" for tier {data.get('tier')}{f' in {where}' if where else ''}"
        if name == "voted":
            verdict = _VERDICTS.get(str(data.get("verdict", "")), "Voted")
            needed = int(data.get("approvals_required") or 1)
            count = (
                f" ({data.get('approvals')} of {needed} approvals)"
                if needed > 1 and data.get("verdict") in ("approve", "modify")
                else ""
            )
            return verdict, count
        if name == "resolved":
            status = _STATUSES.get(str(data.get("status", "")), str(data.get("status", "")))
            return f"Closed as {status}", ""
        if name == "escalated":
            return (
                f"Moved to tier {data.get('to_tier')}",
                f": no one at tier {data.get('from_tier')} decided in time",
            )
        if name == "expired":
            action = (reason or "").removeprefix("on_timeout:")
            return "No one decided by the deadline", f": {_TIMEOUTS.get(action, action)}"
        if name == "reminded":
            return "Reminder sent", f" to tier {data.get('tier')}"
        if name == "cancelled":
            return "Cancelled", f" by {self._who(actor, data)}"
        if name == "reversed":
            return "The agent was told to undo it", ""
        if name == "outcome":
            result = "right" if data.get("correct") else "wrong"
            note = f": {reason}" if reason else ""
            return (
                "Outcome reported",
                f" by {self._who(actor, data)}: the decision was {result}{note}",
            )
        if name == "sla_restarted":
            return "Deadline restarted", " after the service was down"
        if name == "delivered":
            return "Verdict delivered to the agent", f" (HTTP {data.get('status_code')})"
        if name == "delivery_failed":
            code = data.get("status_code")
            error = data.get("error")
            detail = ", ".join(str(x) for x in (f"HTTP {code}" if code else None, error) if x)
            return "Delivery to the agent failed", f" ({detail})" if detail else ""
        if name == "delivery_retried":
            return "Delivery queued again", ""
        if name in ("stopped", "started"):
            return f"Agent {data.get('agent_id')} {name}", ""
        if name == "standing_granted":
            return "Standing approval granted", f" for {data.get('kind')} of {data.get('agent_id')}"
        if name == "standing_revoked":
            return "Standing approval revoked", ""
        if name == KEYED_EVENT:
            return "Audit chain keyed", f": {reason}" if reason else ""
        if name in ("model_activated", "model_deactivated"):
            return f"Prediction model {data.get('version')} {name.removeprefix('model_')}", ""
        return readable(name), ""


# Events done by a person or an agent, written "via <channel> by <who>"; and those whose
# `reason` is a person's words (a rationale) rather than a code.
_BY_SOMEONE = frozenset(
    {
        "voted",
        "delivery_retried",
        "stopped",
        "started",
        "standing_granted",
        "standing_revoked",
    }
)
_WITH_REASON = frozenset({"voted", "stopped", "started", "standing_granted"})
