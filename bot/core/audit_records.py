"""Audit events and the hash chain that links them: how a link is made and how a chain is walked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.clock import isoformat
from signoff_client.canonical import canonical_json, sha256_hex


@dataclass(frozen=True)
class AuditEvent:
    event: str
    at: datetime
    request_id: str | None = None
    actor: str = "system"
    channel: str = "api"
    reason: str | None = None
    risk: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "at": isoformat(self.at),
            "request_id": self.request_id,
            "actor": self.actor,
            "channel": self.channel,
            "reason": self.reason,
            "risk": self.risk,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.event.hashed_fields(), "hash": self.hash}


GENESIS_HASH = "0" * 64


def audit_hash(prev_hash: str, seq: int, event: AuditEvent) -> str:
    """Chain link: each row's hash covers its own fields, its position and its predecessor."""
    return sha256_hex(canonical_json({"prev": prev_hash, "seq": seq, **event.hashed_fields()}))


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(
    records: Sequence[AuditRecord], head: tuple[int, str] | None = None
) -> AuditVerification:
    """Walk the chain in stored order and name the first row that is not where it should be.

    `head` is the tail recorded at append time; without it, deleting the newest events
    would leave a shorter chain that is still internally consistent.
    """
    prev = GENESIS_HASH
    expected_seq = 1
    for count, record in enumerate(records):
        if record.seq != expected_seq:
            kind = "removed" if record.seq > expected_seq else "reordered"
            return AuditVerification(
                False,
                count,
                expected_seq,
                f"event {expected_seq} is {kind} (found event {record.seq} in its place)",
            )
        if record.prev_hash != prev:
            return AuditVerification(
                False, count, record.seq, f"event {record.seq} does not follow its predecessor"
            )
        if audit_hash(prev, record.seq, record.event) != record.hash:
            return AuditVerification(
                False, count, record.seq, f"event {record.seq} was altered after it was written"
            )
        prev = record.hash
        expected_seq += 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != expected_seq - 1 or head_hash != prev:
            if head_seq >= expected_seq:
                problem = f"events {expected_seq} to {head_seq} were removed"
                return AuditVerification(False, len(records), expected_seq, problem)
            return AuditVerification(
                False,
                len(records),
                head_seq + 1 if head_seq < expected_seq - 1 else expected_seq - 1,
                "the chain's end does not match the recorded head",
            )
    return AuditVerification(True, len(records))
