"""The keyed audit chain: how links are made and how a chain and its checkpoints are checked.

A link made before a key existed is `sha256(canonical_json(prev, seq, fields))`, as it always
was; a keyed link is an HMAC-SHA256 of the same text under the audit key, which lives outside
the database. Someone who can write to the database but does not hold the key can still
delete rows or recompute unkeyed links, but no longer make a keyed link: once the chain is
keyed, every later link must be keyed too.

The move to a key (or from one key to the next) is itself an event, `audit_keyed`, linked
under the new key and naming it and its predecessor by key id, so that a verifier knows
from which event on a key is required and cannot be talked back into accepting unkeyed
links after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.domain import GENESIS_HASH, AuditEvent, AuditRecord, audit_hash, canonical_json

KEYED_EVENT = "audit_keyed"
# 32 random bytes is the HMAC-SHA256 block size's worth of entropy the contract asks for.
MIN_KEY_BYTES = 32


class AuditKeyError(ValueError):
    """An audit key that is not base64 of at least MIN_KEY_BYTES bytes."""


@dataclass(frozen=True)
class AuditKey:
    """One HMAC key. Its `id` names it in `audit_keyed` events without revealing it."""

    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return hmac.new(self.secret, b"signoff audit key id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def from_base64(cls, text: str) -> AuditKey:
        """Raises AuditKeyError for text that is not base64 of at least 32 bytes."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AuditKeyError("is not valid base64") from exc
        if len(secret) < MIN_KEY_BYTES:
            raise AuditKeyError(
                f"holds {len(secret)} bytes; at least {MIN_KEY_BYTES} random bytes are needed"
            )
        return cls(secret)


@dataclass(frozen=True)
class AuditKeyring:
    """The key new links are made with, and earlier keys kept to verify older links."""

    current: AuditKey
    previous: tuple[AuditKey, ...] = ()

    def by_id(self, key_id: object) -> AuditKey | None:
        for key in (self.current, *self.previous):
            if key.id == key_id:
                return key
        return None


@dataclass(frozen=True)
class AuditAnchor:
    """The `audit_head` row: the chain's last link and the key it was made with."""

    seq: int
    hash: str
    key_id: str | None = None


def link_hash(prev_hash: str, seq: int, event: AuditEvent, key: AuditKey | None) -> str:
    """A link over the event's fields, its position and its predecessor; keyed when `key`."""
    if key is None:
        return audit_hash(prev_hash, seq, event)
    message = canonical_json({"prev": prev_hash, "seq": seq, **event.hashed_fields()})
    return hmac.new(key.secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def keyed_event(at: datetime, key: AuditKey, previous_key_id: str | None) -> AuditEvent:
    return AuditEvent(
        event=KEYED_EVENT,
        at=at,
        actor="system",
        channel="system",
        reason="the audit chain is keyed from here on"
        if previous_key_id is None
        else "key rotated",
        data={"key_id": key.id, "previous_key_id": previous_key_id},
    )


class UnkeyedAppend(Exception):
    """Appending without a key to a chain that is keyed would break it for good."""


def link_events(
    anchor: AuditAnchor,
    events: Sequence[AuditEvent],
    key: AuditKey | None,
    *,
    switch_at: datetime | None = None,
) -> tuple[list[AuditRecord], AuditAnchor]:
    """The records that extend the chain at `anchor` by `events`, and the new anchor.

    When `key` is not the key the chain was last linked with, an `audit_keyed` event comes
    first (at `switch_at`, else at the first event's time). Raises UnkeyedAppend when the
    chain is keyed and no key is given.
    """
    if key is None and anchor.key_id is not None:
        raise UnkeyedAppend(
            f"the audit chain is keyed (key {anchor.key_id}); set SIGNOFF_AUDIT_KEY to write to it"
        )
    todo = list(events)
    if key is not None and key.id != anchor.key_id:
        at = switch_at or (todo[0].at if todo else None)
        if at is not None:
            todo.insert(0, keyed_event(at, key, anchor.key_id))
    seq, prev = anchor.seq, anchor.hash
    records = []
    for event in todo:
        seq += 1
        digest = link_hash(prev, seq, event, key)
        records.append(AuditRecord(seq, event, prev, digest))
        prev = digest
    return records, AuditAnchor(seq, prev, key.id if key else anchor.key_id)


@dataclass(frozen=True)
class Checkpoint:
    """What a signed checkpoint states: the chain had `size` events ending in `root`."""

    name: str
    size: int
    root: str
    time: datetime | None = None


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str


@dataclass(frozen=True)
class AuditReport:
    """The verdict on a chain: intact, or the first bad event and what is wrong with it.

    `unverified_from` is the first keyed event when no key was given to check keyed links.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    unverified_from: int | None = None
    checkpoints: int = 0


def verify_audit(
    records: Sequence[AuditRecord],
    anchor: AuditAnchor | None,
    *,
    keyring: AuditKeyring | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    anchor_required: bool = True,
) -> AuditReport:
    """Check the chain, its recorded head and signed checkpoints; name the first bad event.

    `anchor` None means the `audit_head` row is gone (a problem when `anchor_required`).
    Checkpoints must have had their signatures checked already: each one states how long
    the chain was and how it ended at some moment, which catches removed newest events and
    rewrites that the chain alone cannot show.
    """
    findings: list[Finding] = []
    walked = _walk(records, keyring, findings)
    good = walked.good
    # In this order, so that at the same event the most telling finding is named: a broken
    # link, then what a signed checkpoint says, then the recorded head.
    signed = list(checkpoints)
    _check_checkpoints(records, good, walked.complete, signed, findings)
    if anchor is None:
        if anchor_required:
            findings.append(
                Finding(
                    good + 1,
                    "the chain's recorded head (the audit_head row) is missing: "
                    f"events after {good} may have been removed",
                )
            )
    elif walked.complete:
        _check_anchor(anchor, good, walked.tail, findings)
    if keyring is not None and walked.complete and walked.key is None:
        findings.append(
            Finding(
                1,
                "no event is keyed with SIGNOFF_AUDIT_KEY: the chain was rewritten without "
                "the key (or no server has run with this key yet)",
            )
        )
    if not findings:
        return AuditReport(True, len(records), None, None, walked.unverifiable_from, len(signed))
    first = min(findings, key=lambda f: f.seq)
    return AuditReport(False, good, first.seq, first.problem, walked.unverifiable_from, len(signed))


@dataclass
class _Walk:
    good: int = 0
    tail: str = GENESIS_HASH
    key: AuditKey | None = None
    complete: bool = True
    unverifiable_from: int | None = None


def _walk(
    records: Sequence[AuditRecord], keyring: AuditKeyring | None, findings: list[Finding]
) -> _Walk:
    """Follow the links in stored order; stop at the first one that is not right."""
    state = _Walk()
    keyed_from: int | None = None
    for record in records:
        expected = state.good + 1
        problem = _link_problem(record, expected, state.tail)
        if problem is None:
            if keyring is None:
                problem = _unkeyed_problem(record, state)
            else:
                problem = _keyed_problem(record, state, keyring, keyed_from)
                if problem is None and state.key is not None and keyed_from is None:
                    keyed_from = record.seq
        if problem is not None:
            findings.append(problem)
            state.complete = False
            return state
        state.good = record.seq
        state.tail = record.hash
    return state


def _link_problem(record: AuditRecord, expected: int, prev: str) -> Finding | None:
    if record.seq != expected:
        kind = "removed" if record.seq > expected else "reordered"
        return Finding(
            expected, f"event {expected} is {kind} (found event {record.seq} in its place)"
        )
    if record.prev_hash != prev:
        return Finding(record.seq, f"event {record.seq} does not follow its predecessor")
    return None


def _altered(seq: int) -> Finding:
    return Finding(seq, f"event {seq} was altered after it was written")


def _unkeyed_problem(record: AuditRecord, state: _Walk) -> Finding | None:
    """Without the key only unkeyed links can be recomputed; keyed ones are taken on trust."""
    if record.event.event == KEYED_EVENT or state.unverifiable_from is not None:
        if state.unverifiable_from is None:
            state.unverifiable_from = record.seq
        return None
    if link_hash(record.prev_hash, record.seq, record.event, None) != record.hash:
        return _altered(record.seq)
    return None


def _keyed_problem(
    record: AuditRecord, state: _Walk, keyring: AuditKeyring, keyed_from: int | None
) -> Finding | None:
    seq = record.seq
    if record.event.event == KEYED_EVENT:
        data: Mapping[str, object] = record.event.data
        key = keyring.by_id(data.get("key_id"))
        if key is None:
            if link_hash(record.prev_hash, seq, record.event, None) == record.hash:
                return Finding(seq, f"event {seq} switches to a key with an unkeyed link: forged")
            return Finding(
                seq,
                f"event {seq} moves the chain to audit key {data.get('key_id')}, which neither "
                "SIGNOFF_AUDIT_KEY nor SIGNOFF_AUDIT_OLD_KEYS holds",
            )
        if link_hash(record.prev_hash, seq, record.event, key) != record.hash:
            return _altered(seq)
        previous = state.key.id if state.key is not None else None
        if data.get("previous_key_id") != previous:
            return Finding(seq, f"event {seq} does not follow the key of its predecessor")
        state.key = key
        return None
    if link_hash(record.prev_hash, seq, record.event, state.key) == record.hash:
        return None
    if state.key is not None and audit_hash(record.prev_hash, seq, record.event) == record.hash:
        return Finding(
            seq,
            f"event {seq} has an unkeyed link although the chain is keyed from event "
            f"{keyed_from}: it was rewritten without the key",
        )
    return _altered(seq)


def _check_anchor(anchor: AuditAnchor, good: int, tail: str, findings: list[Finding]) -> None:
    if anchor.seq == good and anchor.hash == tail:
        return
    if anchor.seq > good:
        findings.append(Finding(good + 1, f"events {good + 1} to {anchor.seq} were removed"))
        return
    findings.append(
        Finding(
            anchor.seq + 1 if anchor.seq < good else good,
            "the chain's end does not match the recorded head",
        )
    )


def _check_checkpoints(
    records: Sequence[AuditRecord],
    good: int,
    complete: bool,
    checkpoints: Iterable[Checkpoint],
    findings: list[Finding],
) -> None:
    by_seq = {record.seq: record.hash for record in records[:good]}
    agreed = 0
    for checkpoint in sorted(checkpoints, key=lambda c: c.size):
        when = f" at {checkpoint.time.isoformat()}" if checkpoint.time else ""
        where = f"checkpoint {checkpoint.name}{when}"
        if checkpoint.size == 0:
            continue
        if checkpoint.size > good:
            if complete:
                findings.append(
                    Finding(
                        good + 1,
                        f"events {good + 1} to {checkpoint.size} were removed ({where} "
                        f"counted {checkpoint.size} events)",
                    )
                )
            return
        if by_seq.get(checkpoint.size) != checkpoint.root:
            findings.append(
                Finding(
                    agreed + 1,
                    f"events {agreed + 1} to {checkpoint.size} were rewritten ({where} "
                    f"recorded another hash for event {checkpoint.size})",
                )
            )
            return
        agreed = checkpoint.size
