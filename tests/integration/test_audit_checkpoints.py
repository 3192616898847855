"""Signed checkpoints from running services: one per interval across replicas, one at
shutdown, into a directory or an S3 bucket with object lock (moto's server on loopback)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto.server import ThreadedMotoServer

from bot.core.audit_chain import AuditKeyring, verify_audit
from bot.core.clock import ManualClock
from bot.core.errors import ConfigError
from bot.engine.checkpoints import S3Sink, read_checkpoints, sink_for
from bot.server.app import build_services
from bot.server.audit_wiring import load_audit_keys
from bot.server.config import parse_config
from storage import SqlRepository
from tests.contract._databases import NO_POSTGRES, POSTGRES_URL, postgres_schema
from tests.support.http_receiver import free_port

SIGNER = Ed25519PrivateKey.generate()
KEY = base64.b64encode(b"\x07" * 32).decode()
T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def signing_env() -> dict[str, str]:
    pem = SIGNER.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"SIGNOFF_AUDIT_SIGNING_KEY": pem, "SIGNOFF_AUDIT_KEY": KEY}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'signoff.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip(NO_POSTGRES)
    async with postgres_schema() as url:
        yield url


async def test_replicas_write_one_checkpoint_per_interval_and_one_at_shutdown(
    database: str, tmp_path: Path
) -> None:
    sink = tmp_path / "checkpoints"
    config = parse_config(
        {
            "database_url": database,
            "audit": {"checkpoints": f"file://{sink}", "checkpoint_every": "1m"},
        },
        env={},
    )
    clock = ManualClock(T0)
    env = signing_env()
    a = await build_services(config, env=env, clock=clock, start_scheduler=False)
    b = await build_services(config, env=env, clock=clock, start_scheduler=False)
    async with a.stack, b.stack:
        writers = [s.audit.writer for s in (a, b)]
        assert [w.every for w in writers] == [timedelta(minutes=1)] * 2
        assert "audit_checkpoint" in [j.id for j in a.scheduler._jobs]
        written = [await w.tick() for w in writers]
        assert sum(name is not None for name in written) == 1  # the interval went to one
        clock.advance(timedelta(seconds=30))
        assert [await w.tick() for w in writers] == [None, None]  # same interval
        clock.advance(timedelta(seconds=31))
        later = [await w.tick() for w in reversed(writers)]
        assert sum(name is not None for name in later) == 1
        assert len(list(sink.glob("*.checkpoint"))) == 2
        clock.advance(timedelta(seconds=1))
    # The replicas anchor the chain once more as they stop; at the same instant and head
    # both make the same object, which is stored once.
    assert len(list(sink.glob("*.checkpoint"))) == 3
    keys = load_audit_keys(database, env, create=False)
    assert isinstance(keys.keyring, AuditKeyring)
    good, bad = await read_checkpoints(sink_for(f"file://{sink}"), SIGNER.public_key())
    assert bad == [] and len(good) == 3
    repo = SqlRepository.connect(database)
    try:
        records = await repo.audit_records()
        report = verify_audit(
            records, await repo.audit_anchor(), keyring=keys.keyring, checkpoints=good
        )
    finally:
        await repo.close()
    assert report.ok and report.checkpoints == 3
    # The start-up wrote the switch to the key; nothing else happened.
    assert [r.event.event for r in records] == ["audit_keyed"]


async def test_a_sink_without_a_signing_key_refuses_to_start(tmp_path: Path) -> None:
    config = parse_config(
        {
            "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
            "audit": {"checkpoints": f"file://{tmp_path}"},
        },
        env={},
    )
    with pytest.raises(ConfigError) as caught:
        await build_services(config, env={}, start_scheduler=False)
    assert caught.value.path == "SIGNOFF_AUDIT_SIGNING_KEY"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("file://relative/dir", "file:///ABSOLUTE"),
        ("s3:///prefix", "s3://BUCKET"),
        ("https://bucket/prefix", "file:///ABSOLUTE"),
    ],
)
def test_checkpoint_urls_are_checked_at_load(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"audit": {"checkpoints": value}}, env={})
    assert caught.value.path == "audit.checkpoints" and problem in str(caught.value)


# -- S3 ---------------------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 server on loopback, and a bucket with object lock (1 day, compliance)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket="locked",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    client.create_bucket(Bucket="open")
    try:
        yield client
    finally:
        server.stop()


async def test_s3_sink_keeps_checkpoints_under_object_lock(s3: Any, tmp_path: Path) -> None:
    config = parse_config(
        {
            "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
            "audit": {"checkpoints": "s3://locked/audit/prod"},
        },
        env={},
    )
    services = await build_services(config, env=signing_env(), start_scheduler=False)
    async with services.stack:
        writer = services.audit.writer
        assert isinstance(writer.sink, S3Sink) and await writer.sink.object_lock()
        name = await writer.write()
        assert "audit key" in services.audit.banner()[0]
    listed = s3.list_objects_v2(Bucket="locked", Prefix="audit/prod/")["Contents"]
    keys = sorted(item["Key"] for item in listed)
    assert len(keys) == 2 and f"audit/prod/{name}" in keys  # and the one at shutdown
    good, bad = await read_checkpoints(writer.sink, SIGNER.public_key())
    assert bad == [] and [c.size for c in good] == [1, 1]
    # Nobody, the database administrator included, can delete a locked checkpoint.
    version = s3.head_object(Bucket="locked", Key=keys[0])["VersionId"]
    with pytest.raises(ClientError):
        s3.delete_object(Bucket="locked", Key=keys[0], VersionId=version)
    assert not await S3Sink("open", "").object_lock()


async def test_web_audit_page_checks_the_keyed_chain(tmp_path: Path) -> None:
    """The inbox's audit page runs the same keyed check as `signoff audit verify`."""
    import httpx
    from sqlalchemy import text

    from bot.server.app import create_app
    from bot.server.web import issue_login_link

    database = f"sqlite:///{tmp_path / 'signoff.db'}"
    config = parse_config({"database_url": database}, env={})
    services = await build_services(config, env={"SIGNOFF_AUDIT_KEY": KEY}, start_scheduler=False)
    async with services.stack:
        app = create_app(config, services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signoff") as admin:
            link = await issue_login_link(services)
            path = link.replace(config.settings.public_url, "")
            form = await admin.get(path)
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            signed_in = await admin.post(path, data={"csrf": token.group(1)})
            assert signed_in.status_code == 303
            page = await admin.get("/audit")
            assert "Hash chain intact: 1 events" in page.text
            repo = SqlRepository.connect(database)
            async with repo.engine.begin() as conn:
                await conn.execute(text("UPDATE audit_events SET actor = 'x' WHERE seq = 1"))
            await repo.close()
            page = await admin.get("/audit")
            assert "Hash chain BROKEN at event 1" in page.text


async def test_an_unwritable_sink_skips_the_interval_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.engine.checkpoints import CheckpointWriter, DirectorySink, SinkError
    from storage import InMemoryRepository

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    writer = CheckpointWriter(
        InMemoryRepository(),
        DirectorySink(blocked / "checkpoints"),
        SIGNER,
        "test/signoff/audit",
        ManualClock(T0),
        timedelta(minutes=1),
    )
    assert await writer.tick() is None
    assert "audit checkpoint not written" in caplog.text and str(blocked) in caplog.text
    with pytest.raises(SinkError, match="does not exist"):
        await DirectorySink(tmp_path / "missing").read_all()
