"""The dashboard's figures, pinned on small hand-made histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.domain import (
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
from bot.oversight import figures
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
        for i in range(20)
    ]
    escalated = decided(
        20,
        Status.REJECTED,
        vote("web:careful", Verdict.REJECT, 1000),
        history=(
            TierMove(None, "junior", at(0), "start"),
            TierMove("junior", "senior", at(900), "sla"),
        ),
    )
    careful = [
        escalated,
        decided(21, Status.APPROVED, vote("web:careful", Verdict.APPROVE, 300)),
    ]
    fig = compute(fast + careful)
    stats = {s.reviewer: s for s in fig.reviewers}
    assert stats["web:rs"].rubber_stamp and stats["web:rs"].name == "Rita"
    assert stats["web:rs"].approval_rate == 1.0 and stats["web:rs"].median_seconds == 2
    # Time counts from when the item reached the tier (900 s), not from submission.
    assert stats["web:careful"].median_seconds == (100 + 300) / 2
    assert stats["web:careful"].approval_rate == 0.5 and not stats["web:careful"].rubber_stamp
    assert [w.subject for w in fig.warnings if w.code == "rubber_stamp"] == ["web:rs"]
    assert figures.ReviewerStat("x", "x", 0, 0, 0.0, False).approval_rate == 0.0


# Hand-made histories escalate everything: the escalation-rate sign holds beside the others.
LANE_SIGN = "escalation_high"


def approvals(reviewer: str, approved: int, rejected: int, seconds: float) -> list[Any]:
    """`approved` + `rejected` decisions by one reviewer, each `seconds` after submission."""
    made = [
        decided(i, Status.APPROVED, vote(reviewer, Verdict.APPROVE, seconds))
        for i in range(approved)
    ]
    return made + [
        decided(approved + i, Status.REJECTED, vote(reviewer, Verdict.REJECT, seconds))
        for i in range(rejected)
    ]


@pytest.mark.parametrize(
    ("approved", "rejected", "seconds", "flagged"),
    [
        (20, 0, 4.9, True),  # 100% of 20 in under 5 s: the seed's month-6 reviewer
        (19, 0, 1.0, False),  # too few decisions to judge
        (49, 1, 2.0, True),  # 98% is the line
        (48, 2, 2.0, False),  # 96% approves, but rejects often enough
        (20, 0, 5.0, False),  # 5 s is not under 5 s
    ],
)
def test_rubber_stamp_defaults_are_98_percent_of_20_under_5_seconds(
    approved: int, rejected: int, seconds: float, flagged: bool
) -> None:
    fig = compute(approvals("web:r", approved, rejected, seconds))
    assert fig.reviewers[0].rubber_stamp is flagged
    assert ("rubber_stamp" in [w.code for w in fig.warnings]) is flagged


def test_rubber_stamp_thresholds_are_configurable() -> None:
    history = approvals("web:r", 9, 1, 30)
    strict = figures.Thresholds(
        rubber_stamp_rate=0.9, rubber_stamp_seconds=60, rubber_stamp_min_votes=10
    )
    [warning] = [w for w in compute(history, thresholds=strict).warnings if w.code != LANE_SIGN]
    assert warning.code == "rubber_stamp" and warning.subject == "web:r"
    assert warning.figures == {
        "approval_rate": 0.9,
        "decisions": 10,
        "median_seconds": 30.0,
        "canaries_approved": 0,
    }
    assert [w.code for w in compute(history).warnings] == [LANE_SIGN]


def test_an_approved_canary_counts_against_the_reviewer_only() -> None:
    canary = decided(
        50, Status.APPROVED, vote("web:c", Verdict.APPROVE, 600), created=0, canary=True
    )
    caught = decided(
        51, Status.REJECTED, vote("web:d", Verdict.REJECT, 600), created=0, canary=True
    )
    real = decided(52, Status.APPROVED, vote("web:c", Verdict.APPROVE, 700))
    fig = compute([canary, caught, real])

    stats = {s.reviewer: s for s in fig.reviewers}
    assert (stats["web:c"].canaries, stats["web:c"].canaries_approved) == (1, 1)
    assert stats["web:c"].rubber_stamp and stats["web:c"].votes == 2
    assert (stats["web:d"].canaries, stats["web:d"].canaries_approved) == (1, 0)
    assert not stats["web:d"].rubber_stamp
    [warning] = fig.warnings
    assert warning.subject == "web:c" and "approved 1 of 1 attention checks" in warning.message
    # The agents' figures do not see canaries: one request, one lane count.
    assert fig.total == 1
    assert figures.quality([canary, caught, real]).escalation_precision == figures.Rate(0, 1)


def test_queue_trend_counts_items_waiting_at_each_tier_per_period() -> None:
    moved = req(
        1,
        created=0,
        tier="senior",
        history=(
            TierMove(None, "junior", at(0), "start"),
            TierMove("junior", "senior", at(1800), "sla"),
        ),
    )
    done = decided(2, Status.APPROVED, vote("web:a", Verdict.APPROVE, 1000), created=600)
    # Hour-wide window of 5-minute buckets ending at 3600 s: 13 bucket ends.
    fig = compute([moved, done], now=at(3600))
    assert fig.width == timedelta(minutes=5)
    junior, senior = fig.queue_trend["junior"], fig.queue_trend["senior"]
    assert junior[0] == 1  # by 300 s only req 1 waits, at junior
    assert junior[2] == 2  # at 900 s req 2 (created 600 s, decided 1000 s) waits too
    assert junior[3] == 1 and senior[3] == 0  # 1200 s
    assert junior[6] == 0 and senior[6] == 1  # 2100 s: req 1 moved up at 1800 s
    assert senior[-1] == 1


def test_older_waiting_items_count_in_the_queue_trend() -> None:
    old = req(9, created=-86400)
    fig = compute([], awaiting=[old])
    assert set(fig.queue_trend["junior"]) == {1}


def test_a_growing_queue_warns_per_tier() -> None:
    # One new item every 100 s, none decided: the junior queue grows all hour.
    growing = [req(i, created=i * 100) for i in range(36)]
    fig = compute(growing)
    [warning] = [w for w in fig.warnings if w.code == "queue_growing"]
    assert warning.subject == "junior"
    assert warning.figures["now"] == 36
    # A steady queue (the same 12 items all hour) does not.
    steady = [req(i, created=-10) for i in range(12)]
    assert "queue_growing" not in [w.code for w in compute(steady).warnings]


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


def test_reviewer_figures_group_one_persons_identities() -> None:
    def as_person(reviewer: str, verdict: Verdict, seconds: float) -> Vote:
        made = vote(reviewer, verdict, seconds, "Lead")
        return Vote(*[getattr(made, f) for f in made.__dataclass_fields__][:7], "ops-lead")

    history = [
        decided(1, Status.APPROVED, as_person("slack:U0DDD", Verdict.APPROVE, 10)),
        decided(2, Status.REJECTED, as_person("web:lead", Verdict.REJECT, 30)),
        decided(3, Status.APPROVED, vote("web:other", Verdict.APPROVE, 20)),
    ]
    stats = {s.reviewer: s for s in compute(history).reviewers}
    assert set(stats) == {"ops-lead", "web:other"}
    assert stats["ops-lead"].votes == 2 and stats["ops-lead"].approvals == 1
