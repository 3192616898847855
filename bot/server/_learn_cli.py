"""`signoff standing ...` and `signoff predict ...`: learning from the history (issue 18)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.domain import isoformat
from bot.core.errors import ConfigError, InvalidInput, NotAllowed, NotFound
from bot.server._cli_common import parse_since
from bot.server.config import LoadedConfig, load_config

EXIT_REFUSED = 1
EXIT_USAGE = 2

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _fail(message: str, code: int) -> int:
    print(f"signoff: {message}", file=sys.stderr)
    return code


async def _with_repo(
    config: LoadedConfig, work: Callable[[Any], Any], *, announce: str | None = None
) -> Any:
    """`work(repo)`; then, when `announce` names a notification channel, tell running
    replicas (so a grant or revocation reaches their cached copies now, not within a second).
    """
    from bot.server.audit_cli import open_repo
    from storage import notifier_for

    repo = await open_repo(config)
    try:
        done = await work(repo)
        if announce is not None:
            notifier = notifier_for(repo)
            await notifier.start()
            notifier.publish(announce, "")
            await notifier.close()
        return done
    finally:
        await repo.close()


def _duration(value: str) -> timedelta:
    from routing import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


# -- standing approvals ---------------------------------------------------------------------


def cmd_standing_grant(args: argparse.Namespace) -> int:
    from bot.core.learning import GrantRequest
    from bot.engine.standing import grant
    from routing import Risk

    config = load_config(args.config)
    ask = GrantRequest(
        grantor=args.by,
        agent_id=args.agent,
        kind=args.kind,
        ttl=args.ttl,
        max_uses=args.max_uses,
        reason=args.reason,
        when=args.when,
        max_risk=Risk(args.max_risk),
        allow_high=args.allow_high,
    )
    agents = config.settings.agent_specs()

    async def work(repo: Any) -> Any:
        return await grant(repo, config.policy, agents, ask, datetime.now(UTC), channel="cli")

    try:
        made = asyncio.run(_with_repo(config, work, announce="standing"))
    except InvalidInput as exc:
        return _fail(f"cannot grant: --{exc.field.replace('_', '-')}: {exc.problem}", EXIT_USAGE)
    except (NotAllowed, NotFound) as exc:
        return _fail(f"cannot grant: {exc}", EXIT_REFUSED)
    print(made.id)
    print(
        f"{made.grantor} approves {made.kind} requests of {made.agent_id}"
        f"{' where ' + made.when if made.when else ''} up to {made.max_risk.value} risk, "
        f"{made.max_uses} uses until {isoformat(made.expires_at)}",
        file=sys.stderr,
    )
    return 0


def cmd_standing_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = datetime.now(UTC)

    async def work(repo: Any) -> Any:
        return await repo.standing_approvals(active_at=None if args.all else now)

    grants = asyncio.run(_with_repo(config, work))
    if args.json:
        print(json.dumps([g.to_json() for g in grants], indent=2))
        return 0
    if not grants:
        print("no active standing approvals" if not args.all else "no standing approvals")
        return 0
    print(f"{'id':30} {'grantor':16} {'agent':14} {'kind':12} {'risk':6} {'uses':9} state")
    for g in grants:
        state = (
            f"revoked by {g.revoked_by}"
            if g.revoked_at
            else ("active until " if g.active_at(now) else "ended ") + str(isoformat(g.expires_at))
        )
        print(
            f"{g.id:30} {g.grantor:16} {g.agent_id:14} {g.kind:12} {g.max_risk.value:6} "
            f"{f'{g.uses}/{g.max_uses}':9} {state}"
        )
        if g.when:
            print(f"{'':30} when {g.when}")
    return 0


def cmd_standing_revoke(args: argparse.Namespace) -> int:
    from bot.engine.standing import revoke

    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        return await revoke(
            repo, args.id, args.by, datetime.now(UTC), channel="cli", policy=config.policy
        )

    try:
        done = asyncio.run(_with_repo(config, work, announce="standing"))
    except (NotAllowed, NotFound) as exc:
        return _fail(f"cannot revoke: {exc}", EXIT_REFUSED)
    print(f"{done.id} revoked by {done.revoked_by} after {done.uses} of {done.max_uses} uses")
    return 0


# -- prediction -----------------------------------------------------------------------------


def _since(value: str) -> datetime:
    """`--since` read as the other commands read it, refused by argparse when it is not."""
    try:
        since = parse_since(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    assert since is not None  # a non-empty value always gives a time
    return since


def _event(name: str, **data: Any) -> Any:
    from bot.core.domain import AuditEvent

    return AuditEvent(event=name, at=datetime.now(UTC), actor="cli", channel="cli", data=data)


def _auc(metrics: Any) -> str:
    auc = (metrics.get("evaluation") or {}).get("auc")
    return "n/a" if auc is None else f"{auc:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _describe(model: Any) -> list[str]:
    metrics = model.metrics
    evaluation = metrics.get("evaluation") or {}
    window = metrics.get("evaluation_window") or {}
    lines = [
        f"model {model.version}{' (active)' if model.active else ''}: logistic regression "
        f"on {len(model.features)} features",
        f"  trained {isoformat(model.created_at)} on {isoformat(model.window_start)} .. "
        f"{isoformat(model.window_end)} ({metrics.get('training', {}).get('count', '?')} items)",
        f"  evaluated on the newest 20%: {evaluation.get('count', 0)} items, "
        f"{evaluation.get('positives', 0)} needed a person ({window.get('from', '?')} .. "
        f"{window.get('to', '?')})",
        f"  ROC AUC {_auc(metrics)}; at threshold {evaluation.get('threshold')}: precision "
        f"{_pct(evaluation.get('precision'))}, recall {_pct(evaluation.get('recall'))}, "
        f"{evaluation.get('flagged', 0)} flagged; Brier score "
        f"{'n/a' if evaluation.get('brier') is None else format(evaluation['brier'], '.3f')}",
        "  calibration (predicted -> observed, count):",
    ]
    for b in evaluation.get("calibration") or []:
        lines.append(
            f"    {b['from']:.1f}-{b['to']:.1f}: {b['predicted']:.2f} -> {b['observed']:.2f} "
            f"({b['count']})"
        )
    lines += [f"  ! {w}" for w in metrics.get("warnings") or []]
    lines.append(f"  sha256 {model.sha256}{'' if model.intact else '  (DOES NOT MATCH)'}")
    return lines


def cmd_predict_train(args: argparse.Namespace) -> int:
    from bot.oversight.calibrate import NotEnoughHistory
    from bot.oversight.predict import PredictUnavailable, train
    from bot.server._cli_common import requests_since

    config = load_config(args.config)
    threshold = config.settings.prediction.threshold

    async def history(repo: Any) -> Any:
        return await requests_since(repo, args.since)

    requests = asyncio.run(_with_repo(config, history))
    try:
        trained = train(requests, threshold=threshold)
    except PredictUnavailable:
        return _fail("install signoff[predict] (scikit-learn) to train a model", EXIT_USAGE)
    except NotEnoughHistory as exc:
        return _fail(f"cannot train yet: {exc}", EXIT_REFUSED)
    model = trained.as_model(datetime.now(UTC), "cli")

    async def store(repo: Any) -> Any:
        event = _event(
            "model_trained",
            sha256=model.sha256,
            auc=model.metrics["evaluation"]["auc"],
            window_start=isoformat(model.window_start),
            window_end=isoformat(model.window_end),
        )
        return await repo.add_model(model, event)

    stored = asyncio.run(_with_repo(config, store))
    print("\n".join(_describe(stored)))
    if trained.warnings:
        print("warning: " + "; ".join(trained.warnings), file=sys.stderr)
    print(
        f"stored as version {stored.version}; `signoff predict activate {stored.version}` "
        "puts it to use (prediction.mode shadow or active)",
        file=sys.stderr,
    )
    return 0


def cmd_predict_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        return await repo.prediction_models()

    models = asyncio.run(_with_repo(config, work))
    if args.json:
        print(json.dumps([m.to_json() for m in models], indent=2))
        return 0
    if not models:
        print("no models yet: `signoff predict train`")
        return 0
    print(f"{'version':8} {'trained':22} {'window':25} {'AUC':6} state")
    for m in models:
        window = f"{m.window_start:%Y-%m-%d}..{m.window_end:%Y-%m-%d}"
        state = "active" if m.active else ""
        if m.metrics.get("warnings"):
            state += " (no skill)" if _auc(m.metrics) != "n/a" else " (skill unknown)"
        print(
            f"{m.version:<8} {isoformat(m.created_at)!s:22} {window:25} {_auc(m.metrics):6} {state}"
        )
    return 0


async def _model(repo: Any, version: int) -> Any:
    return next((m for m in await repo.prediction_models() if m.version == version), None)


def cmd_predict_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        return await _model(repo, args.version)

    model = asyncio.run(_with_repo(config, work))
    if model is None:
        return _fail(f"no model version {args.version}", EXIT_REFUSED)
    if args.json:
        print(json.dumps({**model.to_json(), "parameters": dict(model.parameters)}, indent=2))
    else:
        print("\n".join(_describe(model)))
    return 0


def cmd_predict_activate(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        model = await _model(repo, args.version)
        if model is None:
            return f"no model version {args.version}"
        if not model.intact:
            return f"model {args.version} does not match its sha256; train a new one"
        if model.metrics.get("warnings") and not args.force:
            return (
                f"model {args.version} shows no skill ({'; '.join(model.metrics['warnings'])}); "
                "pass --force to activate it anyway"
            )
        await repo.activate_model(
            args.version, datetime.now(UTC), _event("model_activated", version=args.version)
        )
        return None

    refused = asyncio.run(_with_repo(config, work))
    if refused:
        return _fail(f"cannot activate: {refused}", EXIT_REFUSED)
    mode = config.settings.prediction.mode
    note = "" if mode != "off" else " (prediction.mode is off: set shadow or active to use it)"
    print(f"model {args.version} is active{note}")
    return 0


def cmd_predict_deactivate(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work(repo: Any) -> Any:
        active = await repo.active_model()
        version = active.version if active else None
        await repo.activate_model(
            None, datetime.now(UTC), _event("model_deactivated", version=version)
        )
        return version

    version = asyncio.run(_with_repo(config, work))
    print(f"model {version} deactivated" if version else "no model was active")
    return 0


@dataclass(frozen=True)
class LearningSections:
    text: list[str]
    html: str


def learning_sections(
    config: LoadedConfig,
    requests: Any,
    grants: Any,
    model: Any,
    now: datetime,
    figures: Any,
) -> LearningSections:
    """The report's "Standing approvals", "Model" and "Cost of oversight" sections."""
    from bot.oversight import cost
    from bot.oversight.learning import html_section, model_figures, standing_figures, text_lines

    prediction = config.settings.prediction
    standing = standing_figures(requests, grants, now, figures.decision_median)
    modelled = (
        model_figures(
            requests,
            model,
            mode=prediction.mode,
            threshold=prediction.threshold,
            prepare_above=prediction.prepare_above,
        )
        if model is not None
        else None
    )
    spent = cost.cost_figures(
        requests,
        config.settings.oversight.hourly_cost,
        start=figures.start,
        width=figures.width,
        buckets=len(figures.buckets),
    )
    costs = cost.text_lines(spent)
    return LearningSections(
        [*text_lines(standing, modelled), *costs],
        html_section(standing, modelled) + cost.html_section(costs),
    )


def add_commands(sub: Any, with_config: WithConfig) -> None:
    """Register `standing` and `predict` on the top-level subparsers."""
    standing = sub.add_parser(
        "standing", help="standing approvals: approve requests like this for a while"
    ).add_subparsers(dest="standing_command", required=True, metavar="COMMAND")
    grant = with_config(
        standing.add_parser(
            "grant",
            help="let a reviewer approve matching requests in advance; prints the new id",
            description="A grant approves escalate-lane requests of AGENT whose action kind "
            "is KIND, that need one approval, whose risk is at most --max-risk and for which "
            "the CEL condition --when holds (the same variables as routing rules). The "
            "grantor must review at the tier where such items start; --max-risk high needs "
            "--allow-high and a reviewer of the top tier.",
        )
    )
    grant.add_argument("--by", required=True, metavar="REVIEWER", help="e.g. slack:U0AAA")
    grant.add_argument("--agent", required=True)
    grant.add_argument("--kind", required=True, help="the action kind covered")
    grant.add_argument("--when", metavar="CEL", help='e.g. amount <= 200.0 && domain == "ops"')
    grant.add_argument("--ttl", required=True, type=_duration, help="how long: 30m, 2h, 1d")
    grant.add_argument("--max-uses", required=True, type=_positive, metavar="N")
    grant.add_argument("--reason", required=True, metavar="TEXT")
    grant.add_argument(
        "--max-risk", choices=["low", "medium", "high"], default="medium", help="default medium"
    )
    grant.add_argument("--allow-high", action="store_true", help="required for --max-risk high")
    grant.set_defaults(func=cmd_standing_grant)
    listing = with_config(standing.add_parser("list", help="active standing approvals"))
    listing.add_argument("--all", action="store_true", help="also expired and revoked ones")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_standing_list)
    revoke = with_config(standing.add_parser("revoke", help="end a standing approval now"))
    revoke.add_argument("id", metavar="ID")
    revoke.add_argument("--by", required=True, metavar="REVIEWER")
    revoke.set_defaults(func=cmd_standing_revoke)

    predict = sub.add_parser(
        "predict", help="predictive escalation: a model of which requests need a person"
    ).add_subparsers(dest="predict_command", required=True, metavar="COMMAND")
    train = with_config(
        predict.add_parser(
            "train",
            help="fit a model on the history and store it as a new version",
            description="Fits a logistic regression (needs signoff[predict]) on requests "
            "with ground truth (a person's verdict or a reported outcome), the older 80% for "
            "fitting and the newest 20% for evaluation; prints ROC AUC, precision and recall "
            "at prediction.threshold, and calibration. Needs at least 500 labelled items "
            "over 30 days. The model is stored in the database, not activated.",
        )
    )
    train.add_argument(
        "--since", type=_since, default="180d", help="a duration back from now or an ISO date"
    )
    train.set_defaults(func=cmd_predict_train)
    listing = with_config(predict.add_parser("list", help="stored model versions"))
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_predict_list)
    show = with_config(predict.add_parser("show", help="one model's metrics and calibration"))
    show.add_argument("version", type=_positive, metavar="VERSION")
    show.add_argument("--json", action="store_true", help="also the parameters, as JSON")
    show.set_defaults(func=cmd_predict_show)
    activate = with_config(
        predict.add_parser("activate", help="use this version from now on (every replica)")
    )
    activate.add_argument("version", type=_positive, metavar="VERSION")
    activate.add_argument(
        "--force", action="store_true", help="activate even a model that shows no skill"
    )
    activate.set_defaults(func=cmd_predict_activate)
    deactivate = with_config(predict.add_parser("deactivate", help="use no model"))
    deactivate.set_defaults(func=cmd_predict_deactivate)
