"""The keyed chain and its signed checkpoints, checked without a database."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.core.audit_chain import (
    KEYED_EVENT,
    AuditAnchor,
    AuditKey,
    AuditKeyError,
    AuditKeyring,
    Checkpoint,
    link_events,
    link_hash,
    verify_audit,
)
from bot.core.domain import GENESIS_HASH, AuditEvent, AuditRecord, audit_hash
from bot.core.errors import ConfigError
from bot.engine.checkpoints import CheckpointError, key_id, read_checkpoint, sign_checkpoint
from bot.server.audit_wiring import load_audit_keys
from storage import InMemoryRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = AuditKey(b"k" * 32)
OTHER = AuditKey(b"o" * 32)


def events(n: int, start: int = 1) -> list[AuditEvent]:
    return [
        AuditEvent("voted", T0 + timedelta(seconds=i), request_id="req_1", actor="web:alice")
        for i in range(start, start + n)
    ]


def legacy_then_keyed(legacy: int, keyed: int) -> tuple[list[AuditRecord], AuditAnchor]:
    """`legacy` unkeyed events, then `keyed` events under KEY (after the switch event)."""
    old, anchor = link_events(AuditAnchor(0, GENESIS_HASH), events(legacy), None)
    new, anchor = link_events(anchor, events(keyed, legacy + 1), KEY)
    return old + new, anchor


def rewrite_from(records: list[AuditRecord], seq: int, key: AuditKey | None) -> list[AuditRecord]:
    """Edit event `seq`'s actor and recompute every later link with `key` (None: unkeyed)."""
    out = records[: seq - 1]
    prev = out[-1].hash if out else GENESIS_HASH
    for record in records[seq - 1 :]:
        event = record.event
        if record.seq == seq:
            event = dataclasses.replace(event, actor="web:mallory")
        digest = link_hash(prev, record.seq, event, key)
        out.append(AuditRecord(record.seq, event, prev, digest))
        prev = digest
    return out


def keyring() -> AuditKeyring:
    return AuditKeyring(KEY)


def test_key_must_be_base64_of_32_bytes() -> None:
    assert AuditKey.from_base64(base64.b64encode(b"x" * 32).decode()).secret == b"x" * 32
    with pytest.raises(AuditKeyError, match="at least 32"):
        AuditKey.from_base64(base64.b64encode(b"short").decode())
    with pytest.raises(AuditKeyError, match="base64"):
        AuditKey.from_base64("not base64!")
    assert "k" * 4 not in repr(KEY)


def test_legacy_events_keep_verifying_and_the_switch_is_recorded() -> None:
    records, anchor = legacy_then_keyed(3, 2)
    assert [r.event.event for r in records][3] == KEYED_EVENT
    assert records[3].event.data == {"key_id": KEY.id, "previous_key_id": None}
    assert anchor.key_id == KEY.id and anchor.seq == 6
    # Legacy links are the project's unkeyed hashes, unchanged.
    assert records[0].hash == audit_hash(GENESIS_HASH, 1, records[0].event)
    report = verify_audit(records, anchor, keyring=keyring())
    assert report.ok and report.checked == 6


def test_unkeyed_rewrite_after_the_switch_is_named() -> None:
    records, _anchor = legacy_then_keyed(2, 4)
    forged = rewrite_from(records, 5, None)
    report = verify_audit(forged, AuditAnchor(6, forged[-1].hash), keyring=keyring())
    assert not report.ok and report.first_bad_seq == 5
    assert "rewritten without the key" in (report.problem or "")


def test_rewrite_with_another_key_is_named() -> None:
    records, _ = legacy_then_keyed(0, 5)
    forged = rewrite_from(records, 3, OTHER)
    report = verify_audit(forged, AuditAnchor(6, forged[-1].hash), keyring=keyring())
    assert not report.ok and report.first_bad_seq == 3


def test_whole_chain_rewritten_unkeyed_is_caught_by_the_missing_key() -> None:
    records, _ = legacy_then_keyed(0, 4)
    plain = [r.event for r in records if r.event.event != KEYED_EVENT]
    forged, anchor = link_events(AuditAnchor(0, GENESIS_HASH), plain, None)
    assert verify_audit(forged, anchor).ok  # without the key nothing shows
    report = verify_audit(forged, anchor, keyring=keyring())
    assert not report.ok and report.first_bad_seq == 1
    assert "no event is keyed" in (report.problem or "")


def test_rotation_keeps_old_links_verifiable_with_the_old_key() -> None:
    records, anchor = legacy_then_keyed(1, 2)
    more, anchor = link_events(anchor, events(2, 10), OTHER)
    assert more[0].event.data == {"key_id": OTHER.id, "previous_key_id": KEY.id}
    chain = records + more
    assert verify_audit(chain, anchor, keyring=AuditKeyring(OTHER, (KEY,))).ok
    report = verify_audit(chain, anchor, keyring=AuditKeyring(OTHER))
    assert not report.ok and report.first_bad_seq == 2  # KEY's switch: key not held


def test_without_the_key_keyed_links_are_reported_unverified() -> None:
    records, anchor = legacy_then_keyed(2, 2)
    report = verify_audit(records, anchor)
    assert report.ok and report.unverified_from == 3


def test_appending_unkeyed_to_a_keyed_chain_is_refused() -> None:
    _, anchor = legacy_then_keyed(0, 1)
    with pytest.raises(Exception, match="SIGNOFF_AUDIT_KEY"):
        link_events(anchor, events(1), None)


def test_missing_head_row_and_truncation_against_checkpoints() -> None:
    records, _anchor = legacy_then_keyed(0, 6)
    no_head = verify_audit(records, None, keyring=keyring())
    assert not no_head.ok and no_head.first_bad_seq == 8
    signed = Checkpoint("c1", 7, records[6].hash)
    # The head moved back to event 4 and events 5-7 deleted: consistent, but not signed so.
    shortened = records[:4]
    moved = AuditAnchor(4, shortened[-1].hash, KEY.id)
    assert verify_audit(shortened, moved, keyring=keyring()).ok
    report = verify_audit(shortened, moved, keyring=keyring(), checkpoints=[signed])
    assert not report.ok and report.first_bad_seq == 5
    assert "5 to 7 were removed" in (report.problem or "")
    everything = verify_audit([], AuditAnchor(0, GENESIS_HASH), checkpoints=[signed])
    assert not everything.ok and everything.first_bad_seq == 1


def test_legacy_rewrite_is_bounded_by_checkpoints() -> None:
    records, _anchor = link_events(AuditAnchor(0, GENESIS_HASH), events(8), None)
    early, late = Checkpoint("a", 3, records[2].hash), Checkpoint("b", 8, records[7].hash)
    forged = rewrite_from(records, 5, None)
    report = verify_audit(
        forged, AuditAnchor(8, forged[-1].hash), checkpoints=[late, early], anchor_required=True
    )
    assert not report.ok and report.first_bad_seq == 4
    assert "4 to 8 were rewritten" in (report.problem or "")


async def test_memory_repository_links_with_its_key() -> None:
    repo = InMemoryRepository(audit_key=KEY)
    assert await repo.ensure_audit_key(T0)
    assert not await repo.ensure_audit_key(T0)
    anchor = await repo.audit_anchor()
    assert anchor is not None and anchor.key_id == KEY.id
    assert await repo.claim_audit_checkpoint(5)
    assert not await repo.claim_audit_checkpoint(5)
    assert await repo.claim_audit_checkpoint(6)
    records = await repo.audit_records()
    assert verify_audit(records, anchor, keyring=keyring()).ok


# -- checkpoint notes -------------------------------------------------------------------------


def test_checkpoint_is_a_c2sp_signed_note() -> None:
    signer = Ed25519PrivateKey.generate()
    head = "ab" * 32
    note = sign_checkpoint("example.org/signoff/audit", 42, head, T0, signer)
    text, _, signature = note.partition("\n\n")
    assert text.split("\n") == [
        "example.org/signoff/audit",
        "42",
        base64.b64encode(bytes.fromhex(head)).decode(),
        "time 2026-01-01T00:00:00Z",
    ]
    assert signature.startswith("\u2014 example.org/signoff/audit ")
    blob = base64.b64decode(signature.split(" ")[2])
    assert blob[:4] == key_id("example.org/signoff/audit", signer.public_key())
    assert len(blob) == 4 + 64
    # The signature covers the text with its final newline, not the blank line.
    signer.public_key().verify(blob[4:], (text + "\n").encode())
    checkpoint = read_checkpoint("n", note.encode(), signer.public_key())
    assert (checkpoint.size, checkpoint.root, checkpoint.time) == (42, head, T0)


def test_checkpoint_with_a_bad_signature_is_refused() -> None:
    signer = Ed25519PrivateKey.generate()
    note = sign_checkpoint("o", 7, "00" * 32, T0, signer)
    tampered = note.replace("\n7\n", "\n9\n")
    with pytest.raises(CheckpointError, match="does not verify") as caught:
        read_checkpoint("n", tampered.encode(), signer.public_key())
    assert caught.value.size == 9
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(CheckpointError, match="not signed by the given public key"):
        read_checkpoint("n", note.encode(), stranger.public_key())
    with pytest.raises(CheckpointError, match="signed note"):
        read_checkpoint("n", b"o\n7\n", signer.public_key())


def test_checkpoints_signed_before_a_key_rotation_verify_with_both_keys() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = sign_checkpoint("o", 3, "00" * 32, T0, old).encode()
    after = sign_checkpoint("o", 5, "11" * 32, T0, new).encode()
    both = [old.public_key(), new.public_key()]
    assert [read_checkpoint("n", note, both).size for note in (before, after)] == [3, 5]
    with pytest.raises(CheckpointError, match="not signed by the given public key"):
        read_checkpoint("n", before, [new.public_key()])


def test_keys_come_from_the_environment_or_a_file_beside_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'signoff.db'}"
    key = base64.b64encode(b"e" * 32).decode()
    old = base64.b64encode(b"f" * 40).decode()
    env = {"SIGNOFF_AUDIT_KEY": key, "SIGNOFF_AUDIT_OLD_KEYS": old}
    from_env = load_audit_keys(url, env, create=True)
    assert from_env.keyring == AuditKeyring(AuditKey(b"e" * 32), (AuditKey(b"f" * 40),))
    assert not (tmp_path / "signoff.db.audit-key").exists()
    assert load_audit_keys(url, {}, create=False).keyring is None
    made = load_audit_keys(url, {}, create=True)
    path = tmp_path / "signoff.db.audit-key"
    assert made.generated and path.stat().st_mode & 0o777 == 0o600
    again = load_audit_keys(url, {}, create=False)
    assert again.keyring == made.keyring and not again.generated
    assert load_audit_keys("postgresql://u@h/db", {}, create=True).keyring is None
    with pytest.raises(ConfigError) as caught:
        load_audit_keys(url, {"SIGNOFF_AUDIT_OLD_KEYS": "x"}, create=False)
    assert caught.value.path == "SIGNOFF_AUDIT_OLD_KEYS"
