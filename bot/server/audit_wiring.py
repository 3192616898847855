"""The audit keys and checkpoints of one process: read from the environment, wired to storage.

`SIGNOFF_AUDIT_KEY` (base64, at least 32 random bytes) keys the chain's links; earlier keys
stay usable for verification in `SIGNOFF_AUDIT_OLD_KEYS` (comma-separated). Without it, a
SQLite database gets a generated key in a 0600 file beside it, `<database>.audit-key`.
`SIGNOFF_AUDIT_SIGNING_KEY` (an Ed25519 PKCS#8 PEM) signs checkpoints.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.core.audit_chain import AuditKey, AuditKeyError, AuditKeyring
from bot.core.errors import ConfigError
from bot.core.ports import Clock, Repository
from bot.engine.checkpoints import CheckpointWriter, S3Sink, load_private_key, origin_for, sink_for
from bot.server.config import LoadedConfig

if TYPE_CHECKING:
    from bot.engine.scheduler import PeriodicJob

log = logging.getLogger("signoff.audit")

AUDIT_KEY_ENV = "SIGNOFF_AUDIT_KEY"
AUDIT_OLD_KEYS_ENV = "SIGNOFF_AUDIT_OLD_KEYS"
AUDIT_SIGNING_KEY_ENV = "SIGNOFF_AUDIT_SIGNING_KEY"
KEY_FILE_SUFFIX = ".audit-key"


@dataclass(frozen=True)
class AuditKeys:
    """The keyring (None: the chain stays unkeyed) and a sentence saying where it came from."""

    keyring: AuditKeyring | None
    source: str
    generated: bool = False


def key_file_for(database_url: str) -> Path | None:
    """Where the generated key of a SQLite database lives; None for other databases."""
    from storage import sqlite_path

    database = sqlite_path(database_url)
    return None if database is None else database.with_name(database.name + KEY_FILE_SUFFIX)


def _key(text: str, where: str) -> AuditKey:
    try:
        return AuditKey.from_base64(text)
    except AuditKeyError as exc:
        raise ConfigError(where, str(exc)) from exc


def load_audit_keys(database_url: str, env: Mapping[str, str], *, create: bool) -> AuditKeys:
    """The audit keys for this database. With `create`, a SQLite database without
    SIGNOFF_AUDIT_KEY gets a new key file. Raises ConfigError naming the variable or file."""
    previous = tuple(
        _key(part, AUDIT_OLD_KEYS_ENV)
        for part in env.get(AUDIT_OLD_KEYS_ENV, "").split(",")
        if part.strip()
    )
    if env.get(AUDIT_KEY_ENV):
        current = _key(env[AUDIT_KEY_ENV], AUDIT_KEY_ENV)
        return AuditKeys(AuditKeyring(current, previous), f"{AUDIT_KEY_ENV} (key {current.id})")
    path = key_file_for(database_url)
    if path is None:
        return AuditKeys(None, f"unkeyed: set {AUDIT_KEY_ENV} to key the audit chain")
    generated = False
    if not path.exists():
        if not path.parent.is_dir():
            # Opening the database reports the missing directory; no key without it.
            return AuditKeys(None, f"unkeyed: {path.parent} does not exist")
        if not create:
            return AuditKeys(None, f"unkeyed: no {AUDIT_KEY_ENV} and no key file {path}")
        generated = _generate(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the audit key file: {exc}") from exc
    current = _key(text, str(path))
    verb = "generated" if generated else "from"
    return AuditKeys(
        AuditKeyring(current, previous), f"{verb} {path} (key {current.id})", generated
    )


def _generate(path: Path) -> bool:
    """Write a new random key; False when another process wrote one first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(str(path), f"cannot create the audit key file: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
    return True


def load_signing_key(env: Mapping[str, str]) -> Ed25519PrivateKey | None:
    """The checkpoint signing key, or None when unset. Raises ConfigError for a bad key."""
    pem = env.get(AUDIT_SIGNING_KEY_ENV)
    if not pem:
        return None
    return load_private_key(pem.encode("utf-8"), AUDIT_SIGNING_KEY_ENV)


def checkpoint_writer(
    config: LoadedConfig, repo: Repository, clock: Clock, env: Mapping[str, str]
) -> CheckpointWriter | None:
    """The writer for `audit.checkpoints`, or None when no sink is configured.

    Raises ConfigError when a sink is configured without SIGNOFF_AUDIT_SIGNING_KEY.
    """
    audit = config.settings.audit
    if audit.checkpoints is None:
        return None
    key = load_signing_key(env)
    if key is None:
        raise ConfigError(
            AUDIT_SIGNING_KEY_ENV,
            "must hold an Ed25519 private key (PKCS#8 PEM) to sign the checkpoints that "
            "audit.checkpoints asks for",
        )
    return CheckpointWriter(
        repo=repo,
        sink=sink_for(audit.checkpoints),
        key=key,
        origin=origin_for(config.settings.public_url),
        clock=clock,
        every=audit.checkpoint_every,
    )


@dataclass
class AuditWiring:
    """What `build_services` runs: the periodic checkpoint job and the one at shutdown."""

    keys: AuditKeys
    writer: CheckpointWriter | None
    _final_written: bool = False

    def banner(self) -> list[str]:
        """What start-up prints: where the key came from and where checkpoints go."""
        lines = [f"audit key: {self.keys.source}"]
        if self.keys.generated:
            lines.append("  (keep that file: the audit log is proved with it; docs/audit.md)")
        if self.writer is not None:
            every = int(self.writer.every.total_seconds())
            lines.append(f"audit checkpoints: {self.writer.sink.where} every {every}s")
        return lines

    def jobs(self) -> list[PeriodicJob]:
        # Imported here: the CLI reads keys through this module without the scheduler.
        from bot.engine.scheduler import PeriodicJob

        if self.writer is None:
            return []
        every = self.writer.every.total_seconds()
        return [PeriodicJob("audit_checkpoint", every, self.writer.tick)]

    async def start(self, repo: Repository, clock: Clock) -> None:
        """Record a new key in the chain at once, so a chain rewritten without the key and
        a key that never wrote are told apart; warn about a sink that can be rewritten."""
        if await repo.ensure_audit_key(clock.now()):
            log.info("audit chain now keyed: %s", self.keys.source)
        writer = self.writer
        if writer is not None and isinstance(writer.sink, S3Sink):
            if not await writer.sink.object_lock():
                log.warning(
                    "checkpoint bucket %s has no object lock: checkpoints can be deleted",
                    writer.sink.bucket,
                )

    async def final_checkpoint(self) -> None:
        """At shutdown: anchor the last events too, without failing the shutdown. Runs once:
        the app's lifespan and the services' stack both ask."""
        if self.writer is None or self._final_written:
            return
        self._final_written = True
        try:
            await self.writer.write()
        except Exception:
            log.exception("final audit checkpoint not written")
