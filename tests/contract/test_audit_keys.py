"""The keyed audit chain, the same on every backend: links under the repository's key, the
switch recorded once, no unkeyed append to a keyed chain, one checkpoint claim per slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.audit_chain import KEYED_EVENT, AuditAnchor, AuditKey, AuditKeyring, verify_audit
from bot.core.domain import GENESIS_HASH, Change, OutboxResult, OutboxStatus
from bot.core.errors import StorageError
from bot.core.ports import Repository
from storage import InMemoryRepository, SqlRepository
from tests.contract._builders import at, event, outbox
from tests.contract.conftest import POSTGRES, migrated_database

LEASE = timedelta(minutes=5)
KEY = AuditKey(b"a" * 32)
NEXT = AuditKey(b"b" * 32)


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
async def keyed(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Repository]:
    """A repository of each backend holding KEY, with one event written before the key."""
    if request.param == "memory":
        memory = InMemoryRepository()
        await memory.apply(Change(audit=(event("submitted"),)))
        memory.audit_key = KEY
        yield memory
        return
    async with migrated_database(request.param, tmp_path, sqlite_template) as url:
        legacy = SqlRepository.connect(url)
        await legacy.apply(Change(audit=(event("submitted"),)))
        await legacy.close()
        repo = SqlRepository.connect(url, audit_key=KEY)
        try:
            yield repo
        finally:
            await repo.close()


async def test_first_keyed_write_records_the_switch_once(keyed: Repository) -> None:
    await keyed.apply(Change(audit=(event("routed"), event("posted"))))
    await keyed.apply(Change(audit=(event("voted"),)))
    records = await keyed.audit_records()
    assert [r.event.event for r in records] == [
        "submitted",
        KEYED_EVENT,
        "routed",
        "posted",
        "voted",
    ]
    anchor = await keyed.audit_anchor()
    assert anchor == AuditAnchor(5, records[-1].hash, KEY.id)
    assert verify_audit(records, anchor, keyring=AuditKeyring(KEY)).ok
    assert not verify_audit(records, anchor, keyring=AuditKeyring(NEXT)).ok


async def test_ensure_writes_the_switch_without_other_events(keyed: Repository) -> None:
    assert await keyed.ensure_audit_key(at(1))
    assert not await keyed.ensure_audit_key(at(2))
    records = await keyed.audit_records()
    assert [r.event.event for r in records] == ["submitted", KEYED_EVENT]
    assert records[1].event.at == at(1)


async def test_no_unkeyed_append_to_a_keyed_chain(keyed: Repository) -> None:
    await keyed.ensure_audit_key(at(1))
    keyed.audit_key = None  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="SIGNOFF_AUDIT_KEY"):
        await keyed.apply(Change(outbox=(outbox("out_1"),), audit=(event("routed"),)))
    # Nothing of the refused change was written.
    assert await keyed.get_outbox("out_1") is None
    assert len(await keyed.audit_records()) == 2
    keyed.audit_key = KEY  # type: ignore[attr-defined]
    await keyed.apply(Change(outbox=(outbox("out_1"),)))
    await keyed.claim_outbox("w", at(0), LEASE, 1)
    keyed.audit_key = None  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        await keyed.finish_outbox(
            "out_1", "w", OutboxResult(OutboxStatus.DONE, audit=(event("delivered"),))
        )


async def test_rotation_records_the_next_key(keyed: Repository) -> None:
    await keyed.ensure_audit_key(at(1))
    keyed.audit_key = NEXT  # type: ignore[attr-defined]
    await keyed.apply(Change(audit=(event("voted"),)))
    records = await keyed.audit_records()
    assert records[2].event.data == {"key_id": NEXT.id, "previous_key_id": KEY.id}
    anchor = await keyed.audit_anchor()
    assert verify_audit(records, anchor, keyring=AuditKeyring(NEXT, (KEY,))).ok


async def test_one_checkpoint_claim_per_slot(repository: Repository) -> None:
    assert await repository.audit_anchor() == AuditAnchor(0, GENESIS_HASH, None)
    assert await repository.claim_audit_checkpoint(100)
    assert not await repository.claim_audit_checkpoint(100)
    assert await repository.claim_audit_checkpoint(101)
    # A slot value planted in the database does not stop the next interval's checkpoint.
    assert await repository.claim_audit_checkpoint(99)
