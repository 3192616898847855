"""The history read back: `signoff audit export`, `report`, `export training`, `calibrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from bot.core.domain import isoformat
from bot.server._cli_common import (
    WithConfig,
    config_of,
    fail,
    parse_since,
    requests_since,
    with_repo,
)


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    audit: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
) -> None:
    export = with_config(audit.add_parser("export", help="write audit events as JSONL or CSV"))
    export.add_argument("--since", help="a duration back from now (30d, 12h) or an ISO date")
    export.add_argument("--risk", choices=["low", "medium", "high"])
    export.add_argument("--request", help="only this request id")
    export.add_argument("--actor", help="only this actor (e.g. slack:U0AAA)")
    export.add_argument("--last", type=int, help="only the last N events")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.set_defaults(func=cmd_audit_export)
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


def cmd_audit_export(args: argparse.Namespace) -> int:
    config = config_of(args)
    since = parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await repo.audit_records(
            since=since, request_id=args.request, risk=args.risk, actor=args.actor, last=args.last
        )

    records = asyncio.run(with_repo(config, work))
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

    config = config_of(args)
    since = parse_since(args.since) or datetime.now(UTC)
    now = datetime.now(UTC)

    async def work(repo: Any) -> Any:
        learned = await repo.standing_approvals(), await repo.active_model()
        return await gather(repo, since), await repo.alerts(active_only=True), learned

    evidence, alerts, (grants, model) = asyncio.run(with_repo(config, work))
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


def cmd_export_training(args: argparse.Namespace) -> int:
    from bot.oversight.training import examples, render

    config = config_of(args)
    since = parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await requests_since(repo, since)

    rows = examples(asyncio.run(with_repo(config, work)), overrides_only=args.overrides_only)
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

    config = config_of(args)
    since = parse_since(args.since)

    async def work(repo: Any) -> Any:
        return await requests_since(repo, since)

    requests = asyncio.run(with_repo(config, work))
    try:
        result = calibrate(requests, config.policy, target_recall=args.target_recall)
    except NotEnoughHistory as exc:
        return fail(f"cannot calibrate yet: {exc}", 1)
    window = f"since {isoformat(since)}" if since else "in the whole history"
    sys.stdout.write(to_json(result) if args.json else to_text(result, window))
    return 0
