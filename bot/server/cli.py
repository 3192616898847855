"""The `signoff` command line (CONTRACT section 10)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from bot.core import logs
from bot.core.domain import isoformat
from bot.core.errors import ConfigError, StorageError
from bot.server.audit_cli import add_commands as add_audit_commands
from bot.server.config import DEMO_AGENT, LoadedConfig, format_loc, load_config
from bot.server.demo_key import (
    demo_key_path,
    kept_demo_key,
    key_digest,
    new_api_key,
    write_demo_key,
)
from bot.server.preflight import check_secrets
from bot.server.workers import check_workers, run_workers
from signoff_client.mcp import add_commands as add_mcp_commands

EXIT_CONFIG = 2
# What a shell reports for a command its reader stopped listening to (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


def _fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"signoff: {message}", file=sys.stderr)
    return code


def _config(args: argparse.Namespace, path: str | None = None) -> LoadedConfig:
    return load_config(path or getattr(args, "config", None))


# -- serve ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.host:
        env["SIGNOFF_HOST"] = args.host
    if args.port:
        env["SIGNOFF_PORT"] = str(args.port)
    config = load_config(args.config, env)
    check_secrets(config.settings, env)
    workers = args.workers or 1
    check_workers(workers, config.settings.database_url)
    if workers > 1:
        child = [*(["--config", args.config] if args.config else [])]
        for flag, value in (
            ("--host", args.host),
            ("--port", args.port),
            ("--log-level", args.log_level),
            ("--log-format", args.log_format),
        ):
            if value:
                child += [flag, str(value)]
        return run_workers(workers, config.settings.host, config.settings.port, child)
    return asyncio.run(_serve(config, listen_fd=args.listen_fd))


async def _serve(config: LoadedConfig, listen_fd: int | None = None) -> int:
    import uvicorn

    from bot.server.app import build_services, create_app
    from bot.server.web import issue_login_link

    settings = config.settings
    services = await build_services(config)
    async with services.stack:
        banner = [
            f"Signoff {'(embedded default) ' if settings.embedded else ''}"
            f"is running at http://{settings.host}:{settings.port}",
            f"  database: {_redact(settings.database_url)}",
            f"  channels: {', '.join(sorted(services.channels))}",
            *(f"  {line}" for line in services.extras["audit"].banner()),
        ]
        slack = settings.slack.credentials(os.environ)
        if slack is not None:
            ways = [("POST /slack/events", slack.signing_secret), ("Socket Mode", slack.app_token)]
            banner.append(f"  slack: {' and '.join(way for way, on in ways if on)}")
        if settings.embedded:
            path = demo_key_path(settings.database_url)
            try:
                key = kept_demo_key(path)
            except OSError as exc:
                raise ConfigError("", f"cannot keep the demo key in {path}: {exc}") from exc
            await services.repo.set_agent_key(DEMO_AGENT, key_digest(key), services.clock.now())
            banner.append(f"  agent: {DEMO_AGENT}")
            banner.append(f"  api key: {key}")
            banner.append(f"    (kept in {path}; `signoff keys new {DEMO_AGENT}` replaces it)")
        if not settings.web.reviewers and settings.web.oidc is None:
            banner.append(f"  login: {await issue_login_link(services)}")
            banner.append("    (one-time; `signoff web login-link` prints another)")
        app = create_app(config, services=services)

        class BannerServer(uvicorn.Server):
            """Prints the banner once the socket listens: the last thing said at start-up."""

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started and not self.should_exit:
                    print("\n".join(banner), flush=True)

        server = BannerServer(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                # A worker of `--workers N` accepts on the socket its parent bound.
                fd=listen_fd,
                # Logging is set up once, by `bot.core.logs`; uvicorn adds no handlers or levels.
                log_config=None,
                log_level=None,
                lifespan="on",
                server_header=False,
            )
        )
        await server.serve()
    return 0


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# -- keys, passwords ------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace) -> int:
    key, digest = new_api_key()
    config = _config(args) if args.agent == DEMO_AGENT else None
    if config is not None and config.settings.embedded:
        # The embedded default's demo agent: replace the kept key, which a running server
        # stops accepting at once (it looks keys up in the database).
        path = demo_key_path(config.settings.database_url)

        async def work(repo: Any) -> None:
            await repo.set_agent_key(DEMO_AGENT, digest, datetime.now(UTC))

        asyncio.run(_with_repo(config, work, migrate=True))
        write_demo_key(path, key)
        print(f"agent: {args.agent}")
        print(f"api_key: {key}")
        print(f"key_sha256: {digest}")
        print(
            f"The demo key kept in {path} is replaced; the old one stops working.", file=sys.stderr
        )
        return 0
    print(f"agent: {args.agent}")
    print(f"api_key: {key}")
    print(f"key_sha256: {digest}")
    print(
        "Give the api_key to the agent; put key_sha256 under agents[].key_sha256.", file=sys.stderr
    )
    return 0


def cmd_login_link(args: argparse.Namespace) -> int:
    from adapters.web.inbox import BUILTIN_LOGIN
    from adapters.web.sessions import LoginTokens

    config = _config(args)
    reviewers = sorted(config.settings.web.reviewers)
    allowed = reviewers or [BUILTIN_LOGIN]
    login = (args.reviewer or "").removeprefix("web:") or (None if reviewers else BUILTIN_LOGIN)
    if login is None:
        return _fail(
            f"web.reviewers is configured: name one with --reviewer ({', '.join(allowed)})"
        )
    if login not in allowed:
        return _fail(f"no web reviewer {login!r} (one of: {', '.join(allowed)})")

    async def work(repo: Any) -> str:
        return await LoginTokens(repo).issue(login, datetime.now(UTC))

    token = asyncio.run(_with_repo(config, work, migrate=True))
    print(f"{config.settings.public_url.rstrip('/')}/login/token/{token}")
    print(f"One-time sign-in link for web:{login}, valid for 24 hours.", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.server.init_config import write_config

    path = Path(args.path)
    try:
        write_config(path)
    except FileExistsError:
        return _fail(f"{path} already exists; not overwriting it (move it away first)", 1)
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc.strerror}", 1)
    print(f"wrote {path}: every section at its default, with comments")
    print(f"next: signoff policy check {path}   then: signoff serve --config {path}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from adapters.web.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        return _fail("no password given on standard input", 1)
    print(hash_password(password))
    return 0


# -- policy ---------------------------------------------------------------------------------

_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "clean invoice, confidence 0.9",
        {"action": {"kind": "invoice", "summary": "Pay INV-1"}, "confidence": 0.9},
    ),
    (
        "missing data, confidence 0.6",
        {"action": {"kind": "invoice", "summary": "Pay INV-2"}, "confidence": 0.6},
    ),
    (
        "validation failures, confidence 0.3",
        {"action": {"kind": "invoice", "summary": "Pay INV-3"}, "confidence": 0.3},
    ),
    (
        "$5,000 payment at 0.95",
        {"action": {"kind": "payment", "summary": "Pay ACME"}, "confidence": 0.95, "amount": 5000},
    ),
    (
        "irreversible delete at 0.9",
        {
            "action": {"kind": "delete", "summary": "Drop table"},
            "confidence": 0.9,
            "reversible": False,
        },
    ),
    (
        "angry customer (sentiment -0.8)",
        {"action": {"kind": "reply", "summary": "Answer"}, "confidence": 0.9, "sentiment": -0.8},
    ),
    (
        "legal domain at 0.9",
        {"action": {"kind": "reply", "summary": "Advise"}, "confidence": 0.9, "domain": "legal"},
    ),
    ("refund at 0.65", {"action": {"kind": "refund", "summary": "Refund $20"}, "confidence": 0.65}),
]


def _route(
    config: LoadedConfig, body: dict[str, Any], request_id: str = "req_dry_run"
) -> dict[str, Any]:
    from bot.server.http import SubmitIn
    from routing import RoutingInput, decide

    parsed = SubmitIn.model_validate(body)
    decision = decide(
        RoutingInput(
            request_id=request_id,
            agent_id="dry-run",
            action_kind=parsed.action.kind,
            action_summary=parsed.action.summary,
            action_payload=parsed.action.payload,
            confidence=parsed.confidence,
            amount=parsed.amount,
            currency=parsed.currency,
            reversible=parsed.reversible,
            domain=parsed.domain,
            sentiment=parsed.sentiment,
            labels=parsed.labels,
            context=parsed.context.model_dump(),
        ),
        config.policy,
    )
    return {
        "status": decision.status,
        "lane": decision.lane.value,
        "risk": decision.risk.value,
        "reasons": list(decision.reasons),
        "tier": decision.tier,
        "approvals_required": decision.approvals_required,
        "review": decision.review.value,
        "rule_errors": [{"rule": e.rule, "message": e.message} for e in decision.rule_errors],
    }


def cmd_policy_check(args: argparse.Namespace) -> int:
    import os

    config = load_config(args.file)
    check_secrets(config.settings, os.environ)
    policy = config.policy
    print(f"{config.source or 'built-in default (no config file)'}: valid")
    print(
        "tiers: " + " -> ".join(f"{t.name} ({_fmt(t.sla.total_seconds())})" for t in policy.tiers)
    )
    print(f"rules: {', '.join(r.name for r in policy.routing.rules) or 'none'}")
    print()
    print(f"{'sample':40} {'lane':11} {'risk':7} {'tier':9} {'approvals':9} reasons")
    for label, body in _SAMPLES:
        routed = _route(config, body)
        print(
            f"{label:40} {routed['lane']:11} {routed['risk']:7} {routed['tier'] or '-':9} "
            f"{routed['approvals_required']:<9} {', '.join(routed['reasons']) or '-'}"
        )
    return 0


def _fmt(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def cmd_route(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    raw = sys.stdin.read()
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        return _fail(
            f"standard input is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", 1
        )
    if not isinstance(body, dict):
        return _fail("standard input must be a JSON object (a request body)", 1)
    try:
        routed = _route(config, body, request_id=str(body.get("id", "req_dry_run")))
    except ValidationError as exc:
        for error in exc.errors():
            print(f"signoff: {format_loc(error['loc'])}: {error['msg']}", file=sys.stderr)
        return 1
    print(json.dumps(routed, indent=2))
    return 0


# -- database and audit ---------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage import upgrade

    config = _config(args)
    upgrade(config.settings.database_url)
    print(f"database at {_redact(config.settings.database_url)} is at the latest schema")
    return 0


def _parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    from routing import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            "--since", f"{value!r} is neither a duration (30d) nor an ISO date"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _requests_since(repo: Any, since: datetime | None) -> list[Any]:
    """Every request agents submitted at or after `since` (all of them for None). Attention
    checks are left out: they are not an agent's proposals and have no outcome."""
    from bot.oversight.watch import id_floor

    requests = []
    cursor = id_floor(since) if since is not None else None
    while True:
        page = await repo.list_requests(limit=500, cursor=cursor)
        requests += [
            r for r in page.items if not r.canary and (since is None or r.created_at >= since)
        ]
        if page.next_cursor is None:
            return requests
        cursor = page.next_cursor


async def _with_repo(config: LoadedConfig, work: Any, *, migrate: bool = False) -> Any:
    from bot.server.audit_cli import open_repo

    repo = await open_repo(config, migrate=migrate)
    try:
        return await work(repo)
    finally:
        await repo.close()


def cmd_audit_export(args: argparse.Namespace) -> int:
    config = _config(args)
    since = _parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await repo.audit_records(
            since=since, request_id=args.request, risk=args.risk, actor=args.actor, last=args.last
        )

    records = asyncio.run(_with_repo(config, work))
    from adapters.web.export import audit_export

    sys.stdout.write(audit_export(records, args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from importlib import resources

    from adapters.web.inbox import charts
    from bot.oversight.figures import quality
    from bot.oversight.report import html_report, text_report
    from bot.oversight.watch import gather
    from bot.server._learn_cli import learning_sections

    config = _config(args)
    since = _parse_since(args.since) or datetime.now(UTC)
    now = datetime.now(UTC)

    async def work(repo: Any) -> Any:
        learned = await repo.standing_approvals(), await repo.active_model()
        return await gather(repo, since), await repo.alerts(active_only=True), learned

    evidence, alerts, (grants, model) = asyncio.run(_with_repo(config, work))
    figures = evidence.figures(
        now, [t.name for t in config.policy.tiers], config.settings.oversight.thresholds()
    )
    requests = evidence.requests
    measured = quality(requests)
    learning = learning_sections(config, requests, grants, model, now, figures)
    sys.stdout.write(text_report(figures, measured, since, now, alerts))
    sys.stdout.write("\n".join(learning.text) + "\n")
    if args.html:
        css = resources.files("adapters.web").joinpath("static/signoff.css").read_text("utf-8")
        page = html_report(
            figures,
            measured,
            {k: str(v) for k, v in charts(figures).items()},
            since,
            now,
            css,
            alerts,
            sections=learning.html,
        )
        with open(args.html, "w", encoding="utf-8") as out:
            out.write(page)
        print(f"HTML report written to {args.html}")
    return 0


# -- feedback loop --------------------------------------------------------------------------


def cmd_export_training(args: argparse.Namespace) -> int:
    from bot.oversight.training import examples, render

    config = _config(args)
    since = _parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await _requests_since(repo, since)

    rows = examples(asyncio.run(_with_repo(config, work)), overrides_only=args.overrides_only)
    text = render(rows, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        print(f"{len(rows)} training examples written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _target_recall(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 < number <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return number


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bot.oversight.calibrate import NotEnoughHistory, calibrate, to_json, to_text

    config = _config(args)
    since = _parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await _requests_since(repo, since)

    requests = asyncio.run(_with_repo(config, work))
    try:
        result = calibrate(requests, config.policy, target_recall=args.target_recall)
    except NotEnoughHistory as exc:
        return _fail(f"cannot calibrate yet: {exc}", 1)
    window = f"since {isoformat(since)}" if since else "in the whole history"
    sys.stdout.write(to_json(result) if args.json else to_text(result, window))
    return 0


# -- parser ---------------------------------------------------------------------------------


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

    serve = with_config(sub.add_parser("serve", help="run the HTTP service and the scheduler"))
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes on one port, each a replica (PostgreSQL only; default 1)",
    )
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=logs.LEVELS,
        help=f"default ${logs.LOG_LEVEL_ENV}, else INFO (library chatter shows from WARNING)",
    )
    serve.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        help=f"text, or json: one object per line (default ${logs.LOG_FORMAT_ENV}, else text)",
    )
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser("init", help="write a complete, commented signoff.yaml (defaults)")
    init.add_argument("path", nargs="?", default="signoff.yaml", metavar="PATH")
    init.set_defaults(func=cmd_init)

    keys = sub.add_parser("keys", help="API keys for agents").add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND"
    )
    new = with_config(
        keys.add_parser(
            "new",
            help="print a new API key and its sha256 for the config "
            "(for `demo` in the embedded default: replace the kept demo key)",
        )
    )
    new.add_argument("agent", help="the agent id")
    new.set_defaults(func=cmd_keys_new)

    web = sub.add_parser("web", help="web inbox helpers").add_subparsers(
        dest="web_command", required=True, metavar="COMMAND"
    )
    hp = web.add_parser("hash-password", help="read a password on stdin, print a password_hash")
    hp.set_defaults(func=cmd_hash_password)
    link = with_config(
        web.add_parser(
            "login-link",
            help="print a one-time sign-in link for the web inbox (works on a running server)",
        )
    )
    link.add_argument(
        "--reviewer",
        metavar="NAME",
        help="a name under web.reviewers (default: the built-in admin, when none is configured)",
    )
    link.set_defaults(func=cmd_login_link)

    policy = sub.add_parser("policy", help="policy tools").add_subparsers(
        dest="policy_command", required=True, metavar="COMMAND"
    )
    check = policy.add_parser(
        "check",
        help="validate a config and show how sample requests route "
        "(default: $SIGNOFF_CONFIG, else the built-in default)",
    )
    check.add_argument("file", metavar="CONFIG", nargs="?")
    check.set_defaults(func=cmd_policy_check)

    route = sub.add_parser("route", help="dry run: route the request JSON on stdin")
    route.add_argument("file", metavar="CONFIG")
    route.set_defaults(func=cmd_route)

    db = sub.add_parser("db", help="database").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    up = with_config(db.add_parser("upgrade", help="apply migrations (Alembic) up to the latest"))
    up.set_defaults(func=cmd_db_upgrade)

    audit = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    export = with_config(audit.add_parser("export", help="write audit events as JSONL or CSV"))
    export.add_argument("--since", help="a duration back from now (30d, 12h) or an ISO date")
    export.add_argument("--risk", choices=["low", "medium", "high"])
    export.add_argument("--request", help="only this request id")
    export.add_argument("--actor", help="only this actor (e.g. slack:U0AAA)")
    export.add_argument("--last", type=int, help="only the last N events")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.set_defaults(func=cmd_audit_export)
    add_audit_commands(audit, with_config)
    report = with_config(
        sub.add_parser("report", help="production metrics, targets and warning signs")
    )
    report.add_argument("--since", default="30d", help="a duration back from now or an ISO date")
    report.add_argument("--html", metavar="FILE", help="also write an HTML report with plots")
    report.set_defaults(func=cmd_report)

    exports = sub.add_parser("export", help="data for improving the agent").add_subparsers(
        dest="export_command", required=True, metavar="COMMAND"
    )
    training = with_config(
        exports.add_parser(
            "training",
            help="write every human verdict and reported outcome as a training example",
            description="One example per request a person settled (approve, reject, modify, "
            "confirm, reverse) or whose outcome the agent reported: routing features, the "
            "agent's proposal, the verdict with reviewer and rationale, the label "
            "(override, needed_human) and the outcome. Timeouts are left out.",
        )
    )
    training.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="default jsonl"
    )
    training.add_argument("--since", help="a duration back from now (30d, 12h) or an ISO date")
    training.add_argument(
        "--overrides-only",
        action="store_true",
        help="only items a person rejected, modified or reversed",
    )
    training.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    training.set_defaults(func=cmd_export_training)

    calibrate = with_config(
        sub.add_parser(
            "calibrate",
            help="replay the history under other confidence thresholds and suggest better ones",
            description="Routes every stored request again with the configured rules and, for "
            "each pair of thresholds on a 0.05 grid, counts the escalation rate, precision and "
            "recall it would have had (ground truth: a person rejected, modified or reversed "
            "the item, or its outcome was reported wrong). Suggests the pair with the lowest "
            "escalation rate that reaches the target recall, and warns when people reverse "
            "more than 20% of autonomous decisions. Needs at least 20 requests with ground "
            "truth; exits 1 otherwise.",
        )
    )
    calibrate.add_argument(
        "--since", default="90d", help="a duration back from now or an ISO date (default 90d)"
    )
    calibrate.add_argument(
        "--target-recall",
        type=_target_recall,
        default=0.95,
        metavar="FRACTION",
        help="share of problems that must escalate, above 0 and at most 1 (default 0.95)",
    )
    calibrate.add_argument("--json", action="store_true", help="machine-readable output")
    calibrate.set_defaults(func=cmd_calibrate)
    from bot.server.agents_cli import add_agents_parser

    add_agents_parser(sub, with_config)

    # Agent-side processes (they talk to a running Signoff through the agent API); the
    # commands live in the agent SDK so `signoff-mcp` offers the same without the server.
    mcp = sub.add_parser(
        "mcp", help="MCP: approval tools for MCP clients, and a gateway that asks first"
    )
    add_mcp_commands(mcp)

    from bot.server._learn_cli import add_commands

    add_commands(sub, with_config)
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
        return _fail(f"{logs.LOG_LEVEL_ENV}/{logs.LOG_FORMAT_ENV}: {exc}")
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _fail(f"config error: {exc}")
    except StorageError as exc:
        return _fail(f"database error: {exc}", 1)
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
