"""`signoff audit verify` against a database administrator: each tampering is done with SQL
on SQLite and on PostgreSQL, and the real CLI must exit 1 naming the first bad event."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.audit_chain import AuditKey, link_hash
from bot.core.clock import SystemClock
from bot.core.domain import AuditEvent, AuditRecord, Change
from bot.engine.checkpoints import CheckpointWriter, DirectorySink
from storage import SqlRepository, open_repository
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema
from tests.e2e.serve import run

pytestmark = pytest.mark.slow

KEY_BYTES = bytes(range(32))
KEY = AuditKey(KEY_BYTES)
SIGNER = Ed25519PrivateKey.generate()
T0 = datetime(2026, 3, 1, tzinfo=UTC)
LEGACY = 2  # events written before the key existed
EVENTS = 9  # 2 legacy + the switch + 6 keyed


def pem(private: Ed25519PrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Setup:
    url: str
    tmp: Path
    checkpoints: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "SIGNOFF_DATABASE_URL": self.url,
            "SIGNOFF_AUDIT_KEY": base64.b64encode(KEY_BYTES).decode(),
        }

    def config(self) -> Path:
        path = self.tmp / "signoff.yaml"
        path.write_text(f"audit:\n  checkpoints: file://{self.checkpoints}\n")
        return path

    async def verify(
        self, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        public = self.tmp / "audit-public.pem"
        public.write_bytes(public_pem(SIGNER))
        args = ["audit", "verify", "--checkpoints", f"file://{self.checkpoints}"]
        args += ["--public-key", str(public), *extra]
        return await asyncio.to_thread(run, *args, cwd=self.tmp, env=env or self.env)

    async def sql(self, work: Callable[[AsyncConnection], object]) -> None:
        repo = SqlRepository.connect(self.url)
        try:
            async with repo.engine.begin() as conn:
                result = work(conn)
                if asyncio.iscoroutine(result):
                    await result
        finally:
            await repo.close()

    async def records(self) -> list[AuditRecord]:
        repo = SqlRepository.connect(self.url)
        try:
            return list(await repo.audit_records())
        finally:
            await repo.close()


def voted(i: int) -> AuditEvent:
    return AuditEvent(
        "voted",
        T0 + timedelta(seconds=i),
        request_id=f"req_{i}",
        actor="web:alice",
        channel="web",
        reason="looks fine",
        risk="high",
        data={"verdict": "approve"},
    )


async def seed(url: str, checkpoints: Path) -> None:
    """Two events before the key existed, then the switch and six keyed events, and a
    signed checkpoint of all nine."""
    legacy = await open_repository(url, migrate=True)
    for i in range(1, LEGACY + 1):
        await legacy.apply(Change(audit=(voted(i),)))
    await legacy.close()
    repo = await open_repository(url, migrate=False, audit_key=KEY)
    try:
        assert await repo.ensure_audit_key(T0)
        for i in range(LEGACY + 1, EVENTS):
            await repo.apply(Change(audit=(voted(i),)))
        writer = CheckpointWriter(
            repo,
            DirectorySink(checkpoints),
            SIGNER,
            "test/signoff/audit",
            SystemClock(),
            timedelta(minutes=1),
        )
        await writer.write()
    finally:
        await repo.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    checkpoints = tmp_path / "checkpoints"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'signoff.db'}"
        await seed(url, checkpoints)
        yield Setup(url, tmp_path, checkpoints)
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        await seed(url, checkpoints)
        yield Setup(url, tmp_path, checkpoints)


def assert_broken_at(result: subprocess.CompletedProcess[str], seq: int, words: str = "") -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"BROKEN at event {seq}:" in result.stderr, result.stderr
    assert words in result.stderr


async def test_intact_chain_with_legacy_events_verifies(setup: Setup) -> None:
    result = await setup.verify()
    assert result.returncode == 0, result.stderr
    assert f"intact: {EVENTS} events" in result.stdout
    assert "1 signed checkpoints agree" in result.stdout
    # Without the key the keyed links cannot be checked: said, and not called intact.
    no_key = await setup.verify(env={"SIGNOFF_DATABASE_URL": setup.url})
    assert no_key.returncode == 2 and "events from 3 on are keyed" in no_key.stderr
    bad_key = await setup.verify(env={**setup.env, "SIGNOFF_AUDIT_KEY": "c2hvcnQ="})
    assert bad_key.returncode == 2
    assert "SIGNOFF_AUDIT_KEY: holds 5 bytes; at least 32" in bad_key.stderr


async def test_edited_event(setup: Setup) -> None:
    await setup.sql(lambda c: c.execute(text("UPDATE audit_events SET actor = 'x' WHERE seq = 5")))
    assert_broken_at(await setup.verify(), 5, "altered")


async def test_edited_legacy_event(setup: Setup) -> None:
    await setup.sql(lambda c: c.execute(text("UPDATE audit_events SET reason = 'x' WHERE seq = 2")))
    assert_broken_at(await setup.verify(), 2, "altered")


async def test_deleted_event(setup: Setup) -> None:
    await setup.sql(lambda c: c.execute(text("DELETE FROM audit_events WHERE seq = 4")))
    assert_broken_at(await setup.verify(), 4, "removed")


async def test_reordered_events(setup: Setup) -> None:
    async def swap(conn: AsyncConnection) -> None:
        await conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 4"))
        await conn.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = 6"))
        await conn.execute(text("UPDATE audit_events SET seq = 6 WHERE seq = -1"))

    await setup.sql(swap)
    assert_broken_at(await setup.verify(), 4)


async def test_tail_truncated(setup: Setup) -> None:
    await setup.sql(lambda c: c.execute(text("DELETE FROM audit_events WHERE seq >= 7")))
    assert_broken_at(await setup.verify(), 7, "removed")


async def test_tail_truncated_with_head_deleted(setup: Setup) -> None:
    async def cut(conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM audit_events WHERE seq >= 7"))
        await conn.execute(text("DELETE FROM audit_head"))

    await setup.sql(cut)
    assert_broken_at(await setup.verify(), 7, "removed")


async def test_tail_truncated_with_head_moved_back(setup: Setup) -> None:
    async def cut(conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM audit_events WHERE seq >= 7"))
        await conn.execute(
            text(
                "UPDATE audit_head SET seq = 6, "
                "hash = (SELECT hash FROM audit_events WHERE seq = 6)"
            )
        )

    await setup.sql(cut)
    assert_broken_at(await setup.verify(), 7, "7 to 9 were removed")


async def test_everything_deleted(setup: Setup) -> None:
    async def wipe(conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM audit_events"))
        await conn.execute(text("DELETE FROM audit_head"))

    await setup.sql(wipe)
    assert_broken_at(await setup.verify(), 1, "removed")


async def test_everything_deleted_and_head_reset_without_checkpoints(setup: Setup) -> None:
    """Even with no checkpoint to compare with, the key shows that the chain was keyed."""

    async def wipe(conn: AsyncConnection) -> None:
        await conn.execute(text("DELETE FROM audit_events"))
        await conn.execute(
            text("UPDATE audit_head SET seq = 0, hash = :h, key_id = NULL"), {"h": "0" * 64}
        )

    await setup.sql(wipe)
    result = await asyncio.to_thread(run, "audit", "verify", cwd=setup.tmp, env=setup.env)
    assert_broken_at(result, 1, "no event is keyed")


async def rewrite(setup: Setup, seq: int, key: AuditKey | None) -> None:
    """What a database administrator with the project's code can do: change an actor and
    recompute every later link (and the head) with the given key."""
    records = await setup.records()
    prev = records[seq - 2].hash
    rows = []
    for record in records[seq - 1 :]:
        event = record.event
        if record.seq == seq:
            event = dataclasses.replace(event, actor="web:mallory")
        digest = link_hash(prev, record.seq, event, key)
        rows.append({"s": record.seq, "a": event.actor, "p": prev, "h": digest})
        prev = digest

    async def write(conn: AsyncConnection) -> None:
        for row in rows:
            await conn.execute(
                text(
                    "UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                row,
            )
        await conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})

    await setup.sql(write)


async def test_rewrite_with_recomputed_unkeyed_hashes(setup: Setup) -> None:
    await rewrite(setup, 6, None)
    assert_broken_at(await setup.verify(), 6, "rewritten without the key")
    # The signed checkpoint alone also refuses the rewrite, even for someone without the key.
    no_key = {"SIGNOFF_DATABASE_URL": setup.url}
    assert_broken_at(await setup.verify(env=no_key), 1, "rewritten")


async def test_rewrite_with_hashes_keyed_by_another_key(setup: Setup) -> None:
    await rewrite(setup, 5, AuditKey(b"m" * 32))
    assert_broken_at(await setup.verify(), 5, "altered")


async def test_checkpoint_whose_signature_fails(setup: Setup) -> None:
    [checkpoint] = setup.checkpoints.glob("*.checkpoint")
    note = checkpoint.read_text()
    checkpoint.write_text(note.replace(f"\n{EVENTS}\n", "\n4\n", 1))
    assert_broken_at(await setup.verify(), 4, "signature does not verify")


async def test_checkpoint_by_another_key(setup: Setup) -> None:
    intruder = Ed25519PrivateKey.generate()
    forged = CheckpointWriter(
        SqlRepository.connect(setup.url),
        DirectorySink(setup.checkpoints),
        intruder,
        "test/signoff/audit",
        SystemClock(),
        timedelta(minutes=1),
    )
    try:
        await forged.write()
    finally:
        await forged.repo.close()  # type: ignore[attr-defined]
    assert_broken_at(await setup.verify(), EVENTS, "not signed by the given public key")
    # After a signing key rotation, both public keys are given, and each checkpoint passes.
    rotated = setup.tmp / "rotated.pem"
    rotated.write_bytes(public_pem(intruder))
    both = await setup.verify("--public-key", str(rotated))
    assert both.returncode == 0, both.stderr
    assert "2 signed checkpoints agree" in both.stdout


async def test_checkpoint_command_and_config_defaults(setup: Setup) -> None:
    """`signoff audit checkpoint` signs with SIGNOFF_AUDIT_SIGNING_KEY into audit.checkpoints,
    and `verify` takes the sink from the config and the public key from the signing key."""
    config = setup.config()
    env = {**setup.env, "SIGNOFF_AUDIT_SIGNING_KEY": pem(SIGNER)}
    made = await asyncio.to_thread(
        run, "audit", "checkpoint", "--config", str(config), cwd=setup.tmp, env=env
    )
    assert made.returncode == 0, made.stderr
    assert f"{EVENTS} events" in made.stdout
    assert len(list(setup.checkpoints.glob("*.checkpoint"))) == 2
    checked = await asyncio.to_thread(
        run, "audit", "verify", "--config", str(config), cwd=setup.tmp, env=env
    )
    assert checked.returncode == 0, checked.stderr
    assert "2 signed checkpoints agree" in checked.stdout
    unsigned = await asyncio.to_thread(
        run, "audit", "checkpoint", "--config", str(config), cwd=setup.tmp, env=setup.env
    )
    assert unsigned.returncode == 2 and "SIGNOFF_AUDIT_SIGNING_KEY" in unsigned.stderr


def test_serve_keys_the_embedded_chain_and_checkpoints_while_running(tmp_path: Path) -> None:
    """The embedded default generates its key beside the database and says so; with a sink,
    checkpoints are written every interval and once more at shutdown."""
    import httpx

    from tests.e2e.serve import serve

    sink = tmp_path / "checkpoints"
    config = tmp_path / "signoff.yaml"
    config.write_text(f"audit:\n  checkpoints: file://{sink}\n  checkpoint_every: 1s\n")
    with serve(tmp_path) as plain:
        plain.line_matching(r"audit key: generated .*signoff\.db\.audit-key")
    key_file = tmp_path / "signoff.db.audit-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    env = {"SIGNOFF_AUDIT_SIGNING_KEY": pem(SIGNER)}
    with serve(tmp_path, config=config, env=env) as server:
        server.line_matching(r"audit key: from .*signoff\.db\.audit-key")
        server.line_matching(rf"audit checkpoints: file://{sink} every 1s")
        deadline = time.monotonic() + 15
        while len(list(sink.glob("*.checkpoint"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(sink.glob("*.checkpoint"))) >= 2
        # Events written now are only anchored by the checkpoint made at shutdown.
        submitted = httpx.post(
            f"{server.url}/v1/requests",
            headers={"Authorization": f"Bearer {server.api_key}"},
            json={"action": {"kind": "k", "summary": "s"}, "confidence": 0.3},
            timeout=10,
        )
        assert submitted.status_code == 201
    public = tmp_path / "public.pem"
    public.write_bytes(public_pem(SIGNER))
    checked = run(
        "audit", "verify", "--config", str(config), "--public-key", str(public), cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    with sqlite3.connect(tmp_path / "signoff.db") as db:
        (last,) = db.execute("SELECT max(seq) FROM audit_events").fetchone()
        db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
        db.execute(
            "UPDATE audit_head SET seq = ?, hash = (SELECT hash FROM audit_events WHERE seq = ?)",
            (last - 1, last - 1),
        )
    broken = run(
        "audit", "verify", "--config", str(config), "--public-key", str(public), cwd=tmp_path
    )
    assert_broken_at(broken, last, "removed")
