"""`signoff policy check` and `signoff route`: the policy tried on sample and given requests."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pydantic import ValidationError

from bot.server._cli_common import WithConfig, fail
from bot.server.config import LoadedConfig, format_loc, load_config
from bot.server.preflight import check_secrets


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: WithConfig
) -> None:
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
    from bot.engine.submissions import routing_input
    from bot.server.http import SubmitIn
    from routing import decide

    parsed = SubmitIn.model_validate(body)
    decision = decide(routing_input(parsed, request_id, "dry-run"), config.policy)
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
        return fail(
            f"standard input is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", 1
        )
    if not isinstance(body, dict):
        return fail("standard input must be a JSON object (a request body)", 1)
    try:
        routed = _route(config, body, request_id=str(body.get("id", "req_dry_run")))
    except ValidationError as exc:
        for error in exc.errors():
            print(f"signoff: {format_loc(error['loc'])}: {error['msg']}", file=sys.stderr)
        return 1
    print(json.dumps(routed, indent=2))
    return 0
