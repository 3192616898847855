"""`signoff audit verify` and `signoff audit checkpoint`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from bot.core.audit_chain import AuditReport, verify_audit
from bot.core.domain import isoformat
from bot.core.errors import ConfigError
from bot.engine.checkpoints import (
    CheckpointError,
    SinkError,
    load_public_key,
    read_checkpoints,
    sink_for,
)
from bot.server.audit_wiring import checkpoint_writer, load_audit_keys, load_signing_key
from bot.server.config import LoadedConfig, load_config

EXIT_BROKEN = 1
EXIT_CONFIG = 2


async def open_repo(config: LoadedConfig, *, migrate: bool = False) -> Any:
    """The configured database, linking any event it writes with the audit key."""
    from storage import open_repository

    keys = load_audit_keys(config.settings.database_url, os.environ, create=False)
    current = keys.keyring.current if keys.keyring else None
    return await open_repository(config.settings.database_url, migrate=migrate, audit_key=current)


def _public_keys(args: argparse.Namespace) -> list[Any]:
    """The keys given with --public-key (repeatable: the keys used over time), else the one
    of SIGNOFF_AUDIT_SIGNING_KEY."""
    keys = []
    for path in args.public_key or ():
        try:
            with open(path, "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ConfigError("--public-key", f"cannot read {path}: {exc.strerror}") from exc
        keys.append(load_public_key(pem, f"--public-key {path}"))
    if keys:
        return keys
    signing = load_signing_key(os.environ)
    return [signing.public_key()] if signing is not None else []


def cmd_audit_verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    keys = load_audit_keys(config.settings.database_url, os.environ, create=False)
    url = args.checkpoints or config.settings.audit.checkpoints
    where = "--checkpoints" if args.checkpoints else "audit.checkpoints"
    sink = sink_for(url, where) if url else None
    public = _public_keys(args)
    if sink is not None and not public:
        raise ConfigError(
            "--public-key",
            f"needed to check the checkpoints in {sink.where} (or set SIGNOFF_AUDIT_SIGNING_KEY)",
        )

    async def work() -> tuple[Any, Any, list[Any], list[CheckpointError]]:
        repo = await open_repo(config)
        try:
            records = await repo.audit_records()
            anchor = await repo.audit_anchor()
        finally:
            await repo.close()
        if sink is None:
            return records, anchor, [], []
        good, bad = await read_checkpoints(sink, public)
        return records, anchor, good, bad

    try:
        records, anchor, good, bad = asyncio.run(work())
    except SinkError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    report = verify_audit(records, anchor, keyring=keys.keyring, checkpoints=good)
    forged = sorted(bad, key=lambda e: e.size if e.size is not None else -1)
    if forged and (report.ok or _before(forged[0], report)):
        first = forged[0]
        at = f"event {first.size}" if first.size is not None else "an unknown event"
        print(f"audit log BROKEN at {at}: {first}", file=sys.stderr)
        return EXIT_BROKEN
    if not report.ok:
        print(
            f"audit log BROKEN at event {report.first_bad_seq}: {report.problem}", file=sys.stderr
        )
        return EXIT_BROKEN
    if report.unverified_from is not None:
        print(
            f"signoff: events from {report.unverified_from} on are keyed: set SIGNOFF_AUDIT_KEY "
            "(and SIGNOFF_AUDIT_OLD_KEYS) to check them",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    _print_intact(report, records, good, sink is not None)
    return 0


def _before(error: CheckpointError, report: AuditReport) -> bool:
    return report.first_bad_seq is None or (error.size or 0) <= report.first_bad_seq


def _print_intact(report: AuditReport, records: Any, good: list[Any], checked: bool) -> None:
    last = records[-1] if records else None
    tail = f"; last event {last.seq} at {isoformat(last.event.at)}" if last else ""
    print(f"audit log intact: {report.checked} events{tail}")
    if checked and good:
        newest = max(good, key=lambda c: (c.size, c.time.isoformat() if c.time else ""))
        when = f" at {isoformat(newest.time)}" if newest.time else ""
        print(f"  {len(good)} signed checkpoints agree; newest covers {newest.size} events{when}")
    elif checked:
        print("  no checkpoints found yet")
    else:
        print(
            "  no checkpoints checked: only signed checkpoints show removed newest events "
            "(docs/audit.md)"
        )


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from bot.core.clock import SystemClock

    config = load_config(args.config)
    if config.settings.audit.checkpoints is None:
        raise ConfigError("audit.checkpoints", "not set: name a file:// or s3:// sink")

    async def work() -> tuple[str, str, int]:
        repo = await open_repo(config)
        try:
            writer = checkpoint_writer(config, repo, SystemClock(), os.environ)
            assert writer is not None  # audit.checkpoints is set
            name = await writer.write()
            anchor = await repo.audit_anchor()
            return name, writer.sink.where, anchor.seq if anchor else 0
        finally:
            await repo.close()

    try:
        name, where, seq = asyncio.run(work())
    except SinkError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return EXIT_BROKEN
    print(f"checkpoint {name} written to {where}: {seq} events")
    return 0


def add_commands(audit: Any, with_config: Any) -> None:
    """Register `verify` and `checkpoint` on the `signoff audit` subparsers."""
    verify = with_config(
        audit.add_parser(
            "verify",
            help="check the keyed chain and signed checkpoints; exit 1 naming the first bad event",
        )
    )
    verify.add_argument(
        "--checkpoints",
        metavar="URL",
        help="file:///DIR or s3://BUCKET/PREFIX to read (default: audit.checkpoints)",
    )
    verify.add_argument(
        "--public-key",
        metavar="FILE",
        action="append",
        help="the checkpoint signer's Ed25519 public key, SubjectPublicKeyInfo PEM; repeat "
        "it for keys used before a rotation (default: that of SIGNOFF_AUDIT_SIGNING_KEY)",
    )
    verify.set_defaults(func=cmd_audit_verify)
    checkpoint = with_config(
        audit.add_parser("checkpoint", help="sign the chain's head and store it in the sink now")
    )
    checkpoint.set_defaults(func=cmd_audit_checkpoint)
