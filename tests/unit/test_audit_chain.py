"""The hash chain: every alteration, removal and reordering is named by its position."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bot.core.domain import GENESIS_HASH, AuditEvent, AuditRecord, audit_hash, verify_chain

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        event = AuditEvent(f"e{seq}", T0 + timedelta(seconds=seq), request_id="req_1")
        digest = audit_hash(prev, seq, event)
        records.append(AuditRecord(seq, event, prev, digest))
        prev = digest
    return records


def head(records: list[AuditRecord]) -> tuple[int, str]:
    return records[-1].seq, records[-1].hash


def test_intact_chain_verifies_with_and_without_head() -> None:
    records = chain(5)
    assert verify_chain(records).ok
    assert verify_chain(records, head(records)).ok
    assert verify_chain([], None).ok


def test_edited_event_is_named() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(
        records[2], event=dataclasses.replace(records[2].event, actor="mallory")
    )
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == 3
    assert "altered" in (result.problem or "")


def test_removed_event_is_named() -> None:
    records = chain(5)
    del records[1]
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == 2
    assert "removed" in (result.problem or "")


def test_reordered_events_are_named() -> None:
    records = chain(5)
    records[1], records[3] = records[3], records[1]
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == 2


def test_rehashed_edit_breaks_the_link_to_the_next_event() -> None:
    records = chain(4)
    edited = dataclasses.replace(records[1].event, reason="forged")
    records[1] = dataclasses.replace(
        records[1], event=edited, hash=audit_hash(records[0].hash, 2, edited)
    )
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == 3


def test_removed_tail_is_caught_by_the_head() -> None:
    records = chain(6)
    recorded = head(records)
    result = verify_chain(records[:4], recorded)
    assert not result.ok and result.first_bad_seq == 5
    assert "5 to 6 were removed" in (result.problem or "")


def test_head_that_disagrees_is_reported() -> None:
    records = chain(3)
    result = verify_chain(records, (3, "f" * 64))
    assert not result.ok and result.first_bad_seq == 3
    shorter = verify_chain(records, (1, records[0].hash))
    assert not shorter.ok and shorter.first_bad_seq == 2
