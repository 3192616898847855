"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a signed note
(https://c2sp.org/signed-note) whose text is the origin line, the number of events, the
base64 of the chain's head hash, and one extension line with the time; then a blank line
and the Ed25519 signature line `— <origin> base64(key id || signature)`. The "root hash" is
the hash of the chain's last link rather than a Merkle tree root, so standard note tools
check the signature and read the size, while `signoff audit verify` checks the chain.

Checkpoints go to a sink the database administrator cannot write: a directory
(`file:///var/lib/signoff/checkpoints`) or an S3 bucket with object lock
(`s3://bucket/prefix`). Every replica runs the writer; the database hands each interval
to one of them, and a duplicate would only be a second true statement.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.core.audit_chain import Checkpoint
from bot.core.domain import isoformat
from bot.core.errors import ConfigError, SignoffError, StorageError
from bot.core.ports import Clock, Repository

log = logging.getLogger("signoff.audit")

SIGNATURE_PREFIX = "\u2014 "
ED25519_TYPE = b"\x01"
SUFFIX = ".checkpoint"
# Bigger than any checkpoint Signoff writes; refuses to read a planted huge object whole.
MAX_NOTE_BYTES = 64 * 1024


class SinkError(SignoffError):
    """The checkpoint sink cannot be written or read (not a database problem)."""


class CheckpointError(Exception):
    """A checkpoint that is malformed or whose signature does not verify."""

    def __init__(self, name: str, problem: str, size: int | None = None) -> None:
        super().__init__(f"checkpoint {name}: {problem}")
        self.name = name
        self.problem = problem
        self.size = size


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    """The signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + _raw(public)).digest()[:4]


def origin_for(public_url: str) -> str:
    """The origin line and key name: a schema-less URL naming this service's audit log."""
    host = urlsplit(public_url).netloc or "signoff"
    return f"{host}/signoff/audit".replace("+", "-").replace(" ", "-")


def sign_checkpoint(
    origin: str, seq: int, head_hash: str, at: datetime, key: Ed25519PrivateKey
) -> str:
    """The signed note for a chain of `seq` events ending in `head_hash`, at time `at`."""
    root = base64.b64encode(bytes.fromhex(head_hash)).decode("ascii")
    text = f"{origin}\n{seq}\n{root}\ntime {isoformat(at)}\n"
    signature = key_id(origin, key.public_key()) + key.sign(text.encode("utf-8"))
    return f"{text}\n{SIGNATURE_PREFIX}{origin} {base64.b64encode(signature).decode('ascii')}\n"


def read_checkpoint(
    name: str, note: bytes, public: Ed25519PublicKey | Sequence[Ed25519PublicKey]
) -> Checkpoint:
    """Parse a signed checkpoint and check its signature against `public` (one key, or the
    keys in use over time: a signature by any of them will do).

    Raises CheckpointError naming the object and the problem (with the size it claims when
    that much could be read).
    """
    keys = [public] if isinstance(public, Ed25519PublicKey) else list(public)
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointError(name, "is larger than any checkpoint")
    try:
        whole = note.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(name, "is not UTF-8 text") from None
    split = whole.rfind("\n\n")
    if split < 0 or not whole.endswith("\n"):
        raise CheckpointError(name, "is not a signed note (no blank line before signatures)")
    text, signatures = whole[: split + 1], whole[split + 2 :]
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError(name, "needs an origin, a size and a hash line")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(name, f"size {size_text!r} is not a decimal number")
    size = int(size_text)
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(name, "the hash line is not base64", size) from None
    if len(root) != 32:
        raise CheckpointError(name, "the hash line does not hold 32 bytes", size)
    known = {key_id(origin, key): key for key in keys}
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(name, f"malformed signature line {line!r}", size)
        signer, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError(name, "a signature is not base64", size) from None
        # Signatures by other keys (witnesses, a rotated key) are ignored, as the spec says;
        # one by a known key that fails rejects the whole note.
        key = known.get(blob[:4]) if signer == origin else None
        if key is None:
            continue
        try:
            key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise CheckpointError(name, "the signature does not verify", size) from None
        return Checkpoint(name, size, root.hex(), _time(lines[3:]))
    raise CheckpointError(name, "is not signed by the given public key", size)


def _time(extensions: Sequence[str]) -> datetime | None:
    for line in extensions:
        if line.startswith("time "):
            try:
                return datetime.fromisoformat(line[5:].replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


def load_public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    """An Ed25519 SubjectPublicKeyInfo PEM; raises ConfigError naming `where`."""
    try:
        public = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ConfigError(where, "is not a PEM public key (SubjectPublicKeyInfo)") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigError(where, "is not an Ed25519 public key")
    return public


def load_private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    """An Ed25519 PKCS#8 PEM private key without a password; raises ConfigError."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(where, "is not an unencrypted PKCS#8 PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(where, "is not an Ed25519 private key")
    return private


# -- sinks ----------------------------------------------------------------------------------


class CheckpointSink(Protocol):
    """Where checkpoints are kept. Methods raise SinkError when the sink refuses."""

    where: str

    async def put(self, name: str, note: str) -> None:
        """Store a new object; an existing one of that name is never replaced."""
        ...

    async def read_all(self) -> list[tuple[str, bytes]]:
        """Every checkpoint object, (name, content), in name order."""
        ...


class DirectorySink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file://{path}"

    async def put(self, name: str, note: str) -> None:
        await asyncio.to_thread(self._put, name, note)

    def _put(self, name: str, note: str) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(note)
                    out.flush()
                    os.fsync(out.fileno())
                # A hard link appears whole or not at all, and fails rather than replace.
                os.link(temporary, self.path / name)
            finally:
                os.unlink(temporary)
        except FileExistsError:
            return
        except OSError as exc:
            raise SinkError(f"cannot write checkpoint to {self.where}: {exc}") from exc

    async def read_all(self) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self._read_all)

    def _read_all(self) -> list[tuple[str, bytes]]:
        if not self.path.is_dir():
            raise SinkError(f"checkpoint directory {self.path} does not exist")
        found = []
        for entry in sorted(self.path.glob(f"*{SUFFIX}")):
            with entry.open("rb") as handle:
                found.append((entry.name, handle.read(MAX_NOTE_BYTES + 1)))
        return found


class S3Sink:
    """An S3 (or S3-compatible) bucket; the endpoint and credentials come from boto3's usual
    environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"s3://{bucket}/{prefix}"
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    async def put(self, name: str, note: str) -> None:
        await asyncio.to_thread(self._put, name, note)

    def _put(self, name: str, note: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().put_object(
                Bucket=self.bucket,
                Key=self.prefix + name,
                Body=note.encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
            )
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"cannot write checkpoint to {self.where}: {exc}") from exc

    async def read_all(self) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self._read_all)

    def _read_all(self) -> list[tuple[str, bytes]]:
        from botocore.exceptions import BotoCoreError, ClientError

        found = []
        try:
            pages = self._s3().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if not key.endswith(SUFFIX):
                        continue
                    body = self._s3().get_object(Bucket=self.bucket, Key=key)["Body"]
                    found.append((key[len(self.prefix) :], body.read(MAX_NOTE_BYTES + 1)))
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"cannot read checkpoints from {self.where}: {exc}") from exc
        return sorted(found)

    async def object_lock(self) -> bool:
        """Whether the bucket has object lock on (checkpoints cannot be deleted or replaced)."""
        return await asyncio.to_thread(self._object_lock)

    def _object_lock(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            found = self._s3().get_object_lock_configuration(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            return False
        config = found.get("ObjectLockConfiguration", {})
        return bool(config.get("ObjectLockEnabled") == "Enabled")


def sink_for(url: str, where: str = "audit.checkpoints") -> DirectorySink | S3Sink:
    """The sink a `file:///DIR` or `s3://BUCKET/PREFIX` URL names; raises ConfigError."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(where, f"{url!r}: use file:///ABSOLUTE/DIRECTORY")
        return DirectorySink(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(where, f"{url!r}: use s3://BUCKET/PREFIX")
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Sink(parts.netloc, prefix)
    raise ConfigError(where, f"{url!r} is neither file:///DIRECTORY nor s3://BUCKET/PREFIX")


# -- the writer -----------------------------------------------------------------------------


@dataclass
class CheckpointWriter:
    """Signs the chain's current head and stores it: once per interval across replicas
    (`tick`, the periodic job) or whenever asked (`write`: shutdown, the CLI)."""

    repo: Repository
    sink: CheckpointSink
    key: Ed25519PrivateKey
    origin: str
    clock: Clock
    every: timedelta

    async def tick(self) -> str | None:
        """The periodic job: a checkpoint unless another replica has this interval."""
        now = self.clock.now()
        slot = int(now.timestamp() // max(self.every.total_seconds(), 1e-3))
        if not await self.repo.claim_audit_checkpoint(slot):
            return None
        try:
            return await self.write()
        except SinkError as exc:
            log.warning("audit checkpoint not written, retried next interval: %s", exc)
            return None

    async def write(self) -> str:
        """Store a checkpoint of the head as recorded now; returns its object name.

        Raises StorageError when the database refuses or the head row is gone, SinkError
        when the sink does.
        """
        anchor = await self.repo.audit_anchor()
        if anchor is None:
            raise StorageError("the audit chain has no head row: nothing trustworthy to sign")
        now = self.clock.now().astimezone(UTC)
        note = sign_checkpoint(self.origin, anchor.seq, anchor.hash, now, self.key)
        name = f"{now:%Y%m%dT%H%M%S}.{now.microsecond:06d}Z-{anchor.seq}{SUFFIX}"
        await self.sink.put(name, note)
        log.debug("audit checkpoint %s: %d events", name, anchor.seq)
        return name


async def read_checkpoints(
    sink: CheckpointSink, public: Ed25519PublicKey | Sequence[Ed25519PublicKey]
) -> tuple[list[Checkpoint], list[CheckpointError]]:
    """Every checkpoint in `sink` whose signature verifies, and the ones that do not."""
    good: list[Checkpoint] = []
    bad: list[CheckpointError] = []
    for name, note in await sink.read_all():
        try:
            good.append(read_checkpoint(name, note, public))
        except CheckpointError as exc:
            bad.append(exc)
    return good, bad
