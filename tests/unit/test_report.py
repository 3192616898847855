"""`signoff report`: a small sample is said to be small, not shown as a finding, and the
escalation target band and the warning thresholds are two distinct, labelled things."""

from __future__ import annotations

import re
from datetime import timedelta

from adapters.web import _svg
from adapters.web.inbox import charts
from bot.core.domain import Status, Verdict
from bot.oversight import figures as oversight
from bot.oversight.report import html_report, rows, text_report
from routing import Lane
from tests.unit.test_oversight import T0, at, compute, decided, req, vote


def report(requests: list) -> str:  # type: ignore[type-arg]
    return text_report(compute(requests), oversight.quality(requests), T0, at(3600))


def test_one_decision_is_too_few_to_judge() -> None:
    # Two of three requests escalated, one rejected: 67% and 0% would read as findings.
    requests = [
        decided(0, Status.REJECTED, vote("web:alice", Verdict.REJECT, 30)),
        req(1, 1),
        req(2, 2, lane=Lane.AUTONOMOUS, status=Status.APPROVED),
    ]
    text = report(requests)
    line = next(line for line in text.splitlines() if line.startswith("Escalation rate"))
    assert "n=3, too few to judge (needs 10)" in line
    assert "%" not in line.split("too few")[0]
    precision = next(line for line in text.splitlines() if line.startswith("Escalation precision"))
    assert "n=1, too few to judge (needs 10)" in precision
    assert "none judged: n=3 requests, too few to judge (needs 10)" in text
    assert "Warning signs over the period:\n  none\n" not in text


def test_enough_requests_show_rates_with_target_and_warning_apart() -> None:
    requests = [
        req(i, i, lane=Lane.ESCALATE if i < 5 else Lane.AUTONOMOUS, status=Status.APPROVED)
        for i in range(20)
    ]
    table = {
        name: (value, target, warning)
        for name, value, target, warning in rows(compute(requests), oversight.quality(requests))
    }
    assert table["Escalation rate"] == ("25.0%", "10%-30%", "<5% or >40%")
    text = report(requests)
    assert re.search(r"^Metric\s+Value\s+Target\s+Warning sign$", text, re.M)
    assert "Warning signs over the period:\n  none\n" in text


def test_the_escalation_chart_draws_the_target_band_and_the_warning_lines() -> None:
    requests = [req(i, i * 60) for i in range(12)]
    svg = str(charts(compute(requests, now=at(3600) + timedelta(minutes=1)))["escalation"])
    assert svg.count('class="target"') == 1 and "target 10%-30%" in svg
    assert svg.count('class="band"') == 2
    assert "warn below 5%" in svg and "warn above 40%" in svg
    html = html_report(
        compute(requests), oversight.quality(requests), {"escalation": svg}, T0, at(3600)
    )
    assert "<th>Warning sign</th>" in html and "target 10%-30%" in html


def test_a_rate_chart_without_a_target_has_no_band() -> None:
    svg = str(_svg.rate_line("c", "t", "d", ["a", "b"], [0.1, 0.2]))
    assert 'class="target"' not in svg and 'class="band"' not in svg
