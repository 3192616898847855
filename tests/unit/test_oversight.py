"""The dashboard's figures, pinned on small hand-made histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import oversight as figures
from bot.domain import (
    Action,
    ApprovalRequest,
    AuditEvent,
    AuditRecord,
    ReviewStatus,
    Status,
    TierMove,
    Verdict,
    Vote,
)
from routing import Lane, ReviewState, Risk

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACTION = Action("payment", "Pay", {})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def vote(reviewer: str, verdict: Verdict, seconds: float, name: str = "") -> Vote:
    return Vote(reviewer, name or reviewer, verdict, "", at(seconds), "web", ACTION.sha256)


def req(n: int, created: float = 0, **changes: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "id": f"req_{n:04d}",
        "agent_id": "bot",
        "action": ACTION,
        "confidence": 0.5,
        "status": Status.PENDING,
        "lane": Lane.ESCALATE,
        "risk": Risk.MEDIUM,
        "reasons": (),
        "tier": "junior",
        "approvals_required": 1,
        "review": ReviewState.NONE,
        "created_at": at(created),
        "updated_at": at(created),
    }
    fields.update(changes)
    return ApprovalRequest(**fields)


def decided(n: int, status: Status, *votes: Vote, created: float = 0, **changes: Any) -> Any:
    last = max((v.at for v in votes), default=at(created))
    return req(n, created, status=status, votes=votes, decided_at=last, **changes)


def compute(requests: list[ApprovalRequest], **kwargs: Any) -> figures.Figures:
    options: dict[str, Any] = {
        "now": at(3600),
        "tiers": ["junior", "senior"],
        "pending_by_tier": {},
    }
    options.update(kwargs)
    records = options.pop("records", [])
    return figures.compute(requests, records, **options)


def test_buckets_are_as_narrow_as_24_of_them_allow() -> None:
    assert figures.choose_width(timedelta(minutes=20)) == timedelta(minutes=1)
    assert figures.choose_width(timedelta(hours=1)) == timedelta(minutes=5)
    assert figures.choose_width(timedelta(days=1)) == timedelta(hours=1)
    assert figures.choose_width(timedelta(days=30)) == timedelta(days=7)
    assert figures.choose_width(timedelta(days=3000)) == timedelta(days=7)


def test_no_requests_gives_an_empty_last_hour() -> None:
    fig = compute([])
    assert fig.total == 0 and fig.width == timedelta(minutes=5)
    assert fig.escalation_overall.value is None
    assert fig.decision_median is None and fig.reviewers == () and fig.warnings == ()
    assert fig.queue == (("junior", 0), ("senior", 0))
    assert len(fig.labels()) == len(fig.buckets)


def test_lanes_and_escalation_rate_per_bucket() -> None:
    requests = [
        req(1, 0, lane=Lane.AUTONOMOUS, status=Status.APPROVED),
        req(2, 10, lane=Lane.ESCALATE),
        req(3, 1900, lane=Lane.REVIEW, status=Status.APPROVED),
        req(4, 1950, lane=Lane.ESCALATE),
    ]
    fig = compute(requests)
    assert fig.width == timedelta(minutes=5) and fig.buckets[0] == T0
    assert fig.by_lane["autonomous"][0] == 1 and fig.by_lane["escalate"][0] == 1
    assert fig.by_lane["review"][6] == 1 and fig.by_lane["escalate"][6] == 1
    assert fig.escalation[0].value == 0.5 and fig.escalation[1].value is None
    assert fig.escalation_overall == figures.Rate(2, 4)
    assert fig.labels()[:2] == ("09:00", "09:05")
    assert fig.total == 4
    # Under the minimum sample, a 50% rate raises no warning.
    assert fig.warnings == ()


def test_labels_show_the_date_when_buckets_span_days() -> None:
    fig = compute([req(1, 0)], now=at(86400 * 3))
    assert fig.width == timedelta(hours=6) and fig.labels()[0] == "01-05 06:00"
    weekly = compute([req(1, 0)], now=at(86400 * 30))
    assert weekly.labels()[0].count("-") == 1 and ":" not in weekly.labels()[0]


@pytest.mark.parametrize(
    ("escalated", "code"), [(9, "escalation_high"), (0, "escalation_low"), (2, None)]
)
def test_escalation_rate_warnings(escalated: int, code: str | None) -> None:
    requests = [
        req(i, i, lane=Lane.ESCALATE if i < escalated else Lane.AUTONOMOUS) for i in range(20)
    ]
    codes = [w.code for w in compute(requests).warnings]
    assert codes == ([code] if code else [])


def test_overrides_count_only_human_decisions() -> None:
    requests = [
        decided(1, Status.APPROVED, vote("web:a", Verdict.APPROVE, 60)),
        decided(2, Status.REJECTED, vote("web:a", Verdict.REJECT, 120)),
        decided(3, Status.MODIFIED, vote("web:b", Verdict.MODIFY, 180)),
        # A partial approval, then the last tier's SLA rejected it: not a human decision.
        decided(4, Status.REJECTED, vote("web:a", Verdict.APPROVE, 60)),
        # Approved by the on_timeout policy.
        decided(5, Status.APPROVED, vote("policy", Verdict.APPROVE, 60)),
        decided(6, Status.CANCELLED, vote("web:a", Verdict.APPROVE, 60)),
        # Review lane: confirmed counts as agreement, reversed as an override.
        decided(
            7,
            Status.APPROVED,
            vote("web:a", Verdict.CONFIRM, 240),
            lane=Lane.REVIEW,
            review_status=ReviewStatus.CONFIRMED,
        ),
        decided(
            8,
            Status.REVERSED,
            vote("web:a", Verdict.REVERSE, 240),
            lane=Lane.REVIEW,
            review_status=ReviewStatus.REVERSED,
        ),
        req(9, lane=Lane.REVIEW, status=Status.APPROVED, review_status=ReviewStatus.OPEN),
        req(10, lane=Lane.AUTONOMOUS, status=Status.APPROVED, decided_at=at(0)),
    ]
    fig = compute(requests)
    assert fig.override_overall == figures.Rate(3, 5)
    # Time to decision: escalated items a person decided.
    assert sorted(fig.decision_bins) == sorted(
        [(label, {"1-5m": 3}.get(label, 0)) for _, label in figures.DECISION_BINS]
    )
    assert fig.decision_median == 120 and fig.decision_p95 == 180


def test_rising_overrides_warn() -> None:
    early = [decided(i, Status.APPROVED, vote("web:a", Verdict.APPROVE, 60 + i)) for i in range(6)]
    late = [
        decided(10 + i, Status.REJECTED, vote("web:b", Verdict.REJECT, 3000 + i)) for i in range(6)
    ]
    assert "override_rising" in [w.code for w in compute(early + late).warnings]
    assert "override_rising" not in [w.code for w in compute(late + early[:2]).warnings]


def test_reviewer_stats_and_rubber_stamping() -> None:
    fast = [
        decided(i, Status.APPROVED, vote("web:rs", Verdict.APPROVE, 2, "Rita"), created=0)
        for i in range(5)
    ]
    escalated = decided(
        10,
        Status.REJECTED,
        vote("web:careful", Verdict.REJECT, 1000),
        history=(
            TierMove(None, "junior", at(0), "start"),
            TierMove("junior", "senior", at(900), "sla"),
        ),
    )
    careful = [
        escalated,
        decided(11, Status.APPROVED, vote("web:careful", Verdict.APPROVE, 300)),
    ]
    fig = compute(fast + careful)
    stats = {s.reviewer: s for s in fig.reviewers}
    assert stats["web:rs"].rubber_stamp and stats["web:rs"].name == "Rita"
    assert stats["web:rs"].approval_rate == 1.0 and stats["web:rs"].median_seconds == 2
    # Time counts from when the item reached the tier (900 s), not from submission.
    assert stats["web:careful"].median_seconds == (100 + 300) / 2
    assert stats["web:careful"].approval_rate == 0.5 and not stats["web:careful"].rubber_stamp
    assert [w.code for w in fig.warnings] == ["rubber_stamp"]
    assert figures.ReviewerStat("x", "x", 0, 0, 0.0, False).approval_rate == 0.0


def test_time_to_escalate_from_the_audit_log() -> None:
    def record(seq: int, event: str, request_id: str | None, seconds: float) -> AuditRecord:
        return AuditRecord(seq, AuditEvent(event, at(seconds), request_id), "", "")

    records = [
        record(1, "submitted", "req_1", 0),
        record(2, "posted", "req_1", 5),
        record(3, "posted", "req_1", 500),
        record(4, "submitted", "req_2", 10),
        record(5, "posted", "req_2", 100),
        record(6, "posted", "req_3", 100),
        record(7, "stopped", None, 100),
    ]
    fig = compute([], records=records)
    assert fig.time_to_escalate_p50 == 5 and fig.time_to_escalate_p95 == 90
    assert [w.code for w in fig.warnings] == ["slow_escalation"]


def test_queue_depth_and_dead_deliveries() -> None:
    fig = compute([], pending_by_tier={"senior": 3, "retired": 1}, dead_deliveries=2)
    assert fig.queue == (("junior", 0), ("senior", 3), ("retired", 1))
    assert [w.code for w in fig.warnings] == ["dead_deliveries"]


def test_percentile() -> None:
    assert figures.percentile([], 0.5) is None
    assert figures.percentile([3, 1, 2], 0.5) == 2
    assert figures.percentile([1, 2, 3, 4], 0.95) == 4
    assert figures.percentile([7], 0.01) == 7
