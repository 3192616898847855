"""The `signoff` command line (CONTRACT section 10): the parser and the entry point.

Each group of commands lives in its own module with an `add_commands` that builds its part
of the parser: serving (`_serve_cli`), setting up (`_setup_cli`), the policy
(`_policy_cli`), the history (`_report_cli`, `audit_cli`), learning (`_learn_cli`), agents
(`agents_cli`) and the agent-side MCP processes (`signoff_client.mcp`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bot.core import logs
from bot.core.errors import ConfigError, StorageError
from bot.server import _learn_cli, _policy_cli, _report_cli, _serve_cli, _setup_cli, audit_cli
from bot.server._cli_common import EXIT_BROKEN_PIPE, fail
from bot.server.agents_cli import add_agents_parser
from signoff_client.mcp import add_commands as add_mcp_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signoff",
        description="Human approval for AI agents: routing, tiered review, signed resume webhooks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            help="YAML config file (default: $SIGNOFF_CONFIG, else the embedded default)",
        )
        return p

    _serve_cli.add_commands(sub, with_config)
    _setup_cli.add_commands(sub, with_config)
    _policy_cli.add_commands(sub, with_config)
    audit = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    _report_cli.add_commands(sub, audit, with_config)
    audit_cli.add_commands(audit, with_config)
    add_agents_parser(sub, with_config)
    # Agent-side processes (they talk to a running Signoff through the agent API); the
    # commands live in the agent SDK so `signoff-mcp` offers the same without the server.
    mcp = sub.add_parser(
        "mcp", help="MCP: approval tools for MCP clients, and a gateway that asks first"
    )
    add_mcp_commands(mcp)
    _learn_cli.add_commands(sub, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            # Written out here, not at exit, so a reader that went away is noticed here
            # (also after --help, whose SystemExit passes through).
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", None) or os.environ.get(logs.LOG_LEVEL_ENV) or "INFO"
    fmt = getattr(args, "log_format", None) or os.environ.get(logs.LOG_FORMAT_ENV) or "text"
    try:
        logs.configure(level, fmt)
    except ValueError as exc:
        return fail(f"{logs.LOG_LEVEL_ENV}/{logs.LOG_FORMAT_ENV}: {exc}")
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return fail(f"config error: {exc}")
    except StorageError as exc:
        return fail(f"database error: {exc}", 1)
    except KeyboardInterrupt:
        return 130
    return code


def _reader_gone() -> int:
    """The reader of our output went away (`signoff ... | head`): stop without a traceback.

    Standard output is pointed at /dev/null so the interpreter's last flush at exit does
    not fail a second time.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
