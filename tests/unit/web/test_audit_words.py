"""The audit trail in sentences: who did what, when, how and why, in the configured zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.web._audit_words import AuditWords
from bot.core.domain import AuditEvent, AuditRecord
from bot.core.wording import Wording
from routing import default_policy

AT = datetime(2026, 1, 5, 19, 2, tzinfo=UTC)
WORDS = AuditWords(Wording(default_policy(), "en_US", "Europe/Berlin"))


def sentence(event: str, **fields: Any) -> str:
    record = AuditRecord(1, AuditEvent(event=event, at=AT, **fields), "0" * 64, "1" * 64)
    line = WORDS.line(record)
    return f"{line.head} at {WORDS.wording.clock(line.at)}{line.tail}"


def test_votes_read_as_sentences_with_the_channel_the_person_and_the_rationale() -> None:
    assert (
        sentence(
            "voted",
            actor="slack:U1",
            channel="slack",
            reason="PO matches",
            data={"verdict": "approve", "name": "the operations lead", "approvals_required": 1},
        )
        == "Approved at 8:02\u202fPM via Slack by the operations lead: PO matches"
    )
    assert (
        sentence(
            "voted",
            actor="web:bob",
            channel="web",
            data={"verdict": "approve", "name": "Bob", "approvals": 1, "approvals_required": 2},
        )
        == "Approved at 8:02\u202fPM via the web inbox by Bob (1 of 2 approvals)"
    )
    assert sentence("voted", actor="teams:aad-1", channel="teams", data={"verdict": "reject"}) == (
        "Rejected at 8:02\u202fPM via Teams by teams:aad-1"
    )


def test_a_modify_lists_what_it_changed() -> None:
    record = AuditRecord(
        7,
        AuditEvent(
            event="voted",
            at=AT,
            actor="web:alice",
            channel="web",
            reason="wrong amount",
            data={
                "verdict": "modify",
                "name": "Alice",
                "changes": [{"path": "amount", "old": 950, "new": 900}],
            },
        ),
        "0" * 64,
        "1" * 64,
    )
    line = WORDS.line(record)
    assert line.head == "Approved with changes"
    assert line.tail == " via the web inbox by Alice: wrong amount"
    assert [(c.path, c.old, c.new) for c in line.changes] == [("amount", 950, 900)]
    assert line.day == "Mon, Jan 5"


def test_routing_uses_rule_titles_and_never_says_lane() -> None:
    routed = sentence(
        "routed",
        reason="high_value_transaction,irreversible_action",
        data={"lane": "escalate", "tier": "manager", "approvals_required": 2},
    )
    assert routed == (
        "Sent to 2 different people at tier manager at 8:02\u202fPM: "
        "Large payment, Cannot be undone"
    )
    assert sentence("routed", data={"lane": "autonomous"}).startswith("Let through without")
    assert "lane" not in routed.lower()


def test_system_events_say_what_happened() -> None:
    assert sentence("submitted", actor="agent:invoice-bot") == (
        "Submitted at 8:02\u202fPM by agent invoice-bot"
    )
    assert sentence("expired", actor="policy", reason="on_timeout:reject") == (
        "No one decided by the deadline at 8:02\u202fPM: rejected automatically"
    )
    assert sentence("escalated", data={"from_tier": "junior", "to_tier": "senior"}) == (
        "Moved to tier senior at 8:02\u202fPM: no one at tier junior decided in time"
    )
    assert sentence("delivery_failed", channel="webhook", data={"status_code": 500}) == (
        "Delivery to the agent failed at 8:02\u202fPM (HTTP 500)"
    )
    assert sentence("resolved", data={"status": "modified"}) == (
        "Closed as approved with changes at 8:02\u202fPM"
    )
    assert sentence("something_new") == "Something new at 8:02\u202fPM"
