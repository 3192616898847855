"""`signoff report`: the seed's production metrics with targets, as text or an HTML page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from bot.core.domain import Alert
from bot.oversight.figures import ESCALATION_TARGET, Figures, Quality, Rate


def _pct(rate: Rate | float | None, min_sample: int = 1) -> str:
    """A rate as a percentage, or, under `min_sample` cases, the count and why no figure:
    "0.0%" from one decision reads as a finding, and is none."""
    if isinstance(rate, Rate) and rate.whole < min_sample:
        return f"n={rate.whole}, too few to judge (needs {min_sample})"
    value = rate.value if isinstance(rate, Rate) else rate
    return "n/a" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


# What each plot shows, under its heading in the HTML report (keys of inbox.charts()).
CAPTIONS = {
    "lanes": (
        "Requests by lane",
        "Per period; green autonomous, blue review, orange escalated to a person.",
    ),
    "escalation": (
        "Escalation rate",
        "Share of requests escalated per period; green: the target band (10-30%); amber, "
        "past the dashed lines: warning signs (below 5% or above 40% by default).",
    ),
    "overrides": (
        "Override rate",
        "Share of human decisions that rejected, modified or reversed the agent.",
    ),
    "queue": (
        "Queue depth per tier",
        "Items waiting for a verdict at the end of each period, stacked by tier.",
    ),
    "decisions": ("Time to decision", "How long escalated items waited for a person."),
    "reviewers": (
        "Reviewers",
        "Approval rate against median time to decide; red dots are possible rubber stamps.",
    ),
}


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def rows(figures: Figures, quality: Quality) -> list[tuple[str, str, str, str]]:
    """(metric, value, target, warning sign) in the seed's order. The target is where a
    healthy deployment sits; the warning sign is the threshold that raises an alert."""
    limits = figures.thresholds
    enough = limits.min_sample
    low, high = ESCALATION_TARGET
    queue = ", ".join(f"{tier} {count}" for tier, count in figures.queue) or "empty"
    return [
        ("Requests", str(figures.total), "", ""),
        (
            "Escalation rate",
            _pct(figures.escalation_overall, enough),
            f"{low:.0%}-{high:.0%}",
            f"<{limits.escalation_low:.0%} or >{limits.escalation_high:.0%}",
        ),
        ("Escalation precision", _pct(quality.escalation_precision, enough), ">80%", ""),
        ("Escalation recall", _pct(quality.escalation_recall, enough), ">95%", ""),
        ("Time-to-escalate p50", _secs(figures.time_to_escalate_p50), "<10s", ""),
        (
            "Time-to-escalate p95",
            _secs(figures.time_to_escalate_p95),
            "<10s",
            f">{_secs(limits.time_to_escalate)}",
        ),
        (
            "Override frequency",
            _pct(figures.override_overall, enough),
            "watch the trend",
            f"rising by {limits.override_rise:.0%}",
        ),
        ("Time-to-correct (median)", _secs(quality.time_to_correct_median), "minimise", ""),
        ("Task success rate", _pct(quality.task_success, enough), ">95%", ""),
        ("Time-to-decision p50", _secs(figures.decision_median), "", ""),
        ("Queue depth", queue, "not growing", f"growing by {limits.queue_growth:.0%}"),
    ]


def text_report(
    figures: Figures,
    quality: Quality,
    since: datetime,
    now: datetime,
    alerts: Sequence[Alert] = (),
) -> str:
    lines = [f"Signoff oversight report, {_when(since)} to {_when(now)}", ""]
    table = [("Metric", "Value", "Target", "Warning sign"), *rows(figures, quality)]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for name, value, target, warning in table:
        lines.append(
            f"{name:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {warning}".rstrip()
        )
    lines += ["", "Reviewers (approval rate, median time to decide):"]
    for stat in figures.reviewers:
        flag = "  <- possible rubber-stamping" if stat.rubber_stamp else ""
        checks = (
            f"  attention checks approved {stat.canaries_approved} of {stat.canaries}"
            if stat.canaries
            else ""
        )
        lines.append(
            f"  {stat.name:<24} {stat.votes:>5} votes  {stat.approval_rate:>6.1%}  "
            f"{_secs(stat.median_seconds):>8}{checks}{flag}"
        )
    if not figures.reviewers:
        lines.append("  none yet")
    lines += ["", "Warning signs over the period:"]
    lines += [f"  ! {w.message}" for w in figures.warnings] or [f"  {_no_warnings(figures)}"]
    lines += ["", "Active alerts (last evaluation of the running service):"]
    lines += [f"  ! {a.title}, since {_when(a.raised_at)}: {a.message}" for a in alerts] or [
        "  none"
    ]
    return "\n".join(lines) + "\n"


def _no_warnings(figures: Figures) -> str:
    """ "None" only when there was enough to judge; otherwise say so instead."""
    needed = figures.thresholds.min_sample
    if figures.total < needed:
        return f"none judged: n={figures.total} requests, too few to judge (needs {needed})"
    return "none"


def html_report(
    figures: Figures,
    quality: Quality,
    charts: dict[str, str],
    since: datetime,
    now: datetime,
    css: str = "",
    alerts: Sequence[Alert] = (),
    *,
    sections: str = "",
) -> str:
    """A self-contained page: the table with targets, the warning signs, and the plots;
    `sections` (trusted HTML, e.g. bot.oversight.learning) goes before the plots."""
    table = "".join(
        f"<tr><th scope='row'>{html.escape(n)}</th><td>{html.escape(v)}</td>"
        f"<td>{html.escape(t)}</td><td>{html.escape(w)}</td></tr>"
        for n, v, t, w in rows(figures, quality)
    )
    warnings = "".join(f"<li>{html.escape(w.message)}</li>" for w in figures.warnings)
    active = "".join(
        f"<li><strong>{html.escape(a.title)}</strong> since {_when(a.raised_at)}: "
        f"{html.escape(a.message)}</li>"
        for a in alerts
    )
    reviewers = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.votes}</td><td>{s.approval_rate:.1%}</td>"
        f"<td>{html.escape(_secs(s.median_seconds))}</td>"
        f"<td>{f'{s.canaries_approved} of {s.canaries}' if s.canaries else '-'}</td>"
        f"<td>{'possible rubber-stamping' if s.rubber_stamp else ''}</td></tr>"
        for s in figures.reviewers
    )
    plots = "".join(
        f"<figure><figcaption><strong>{html.escape(CAPTIONS.get(key, (key, ''))[0])}"
        f"</strong><br><small>{html.escape(CAPTIONS.get(key, (key, ''))[1])}</small>"
        f"</figcaption>{svg}</figure>"
        for key, svg in charts.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signoff oversight report</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
  padding: 0 1rem; color: #1b1f24; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: .35rem .8rem; border-bottom: 1px solid #d0d7de; }}
.warn li {{ color: #8a1c1c; }}
figure {{ display: inline-block; margin: 1rem; vertical-align: top; width: 30rem;
  max-width: 100%; }}
figcaption {{ margin-bottom: .4rem; }}
svg {{ max-width: 100%; height: auto; }}
{css}
</style></head><body>
<h1>Signoff oversight report</h1>
<p>From {_when(since)} to {_when(now)}. Targets are the production targets of
human-in-the-loop review: escalation 10-30%, precision above 80%, recall above 95%,
time-to-escalate under 10 seconds, task success above 95%.</p>
<h2>Metrics</h2>
<table><thead><tr><th>Metric</th><th>Value</th><th>Target</th><th>Warning sign</th></tr>
</thead><tbody>{table}</tbody></table>
<h2>Warning signs over the period</h2>
<ul class="warn">{warnings or f"<li style='color:#1a7f37'>{_no_warnings(figures)}</li>"}</ul>
<h2>Active alerts</h2>
<ul class="warn">{active or "<li style='color:#1a7f37'>none</li>"}</ul>
<h2>Reviewers</h2>
<table><thead><tr><th>Reviewer</th><th>Votes</th><th>Approval rate</th>
<th>Median time to decide</th><th>Attention checks approved</th><th></th></tr></thead>
<tbody>{reviewers or "<tr><td colspan=6>no votes yet</td></tr>"}</tbody></table>
{sections}<h2>Plots</h2>
{plots}
</body></html>
"""
