"""Prometheus metrics with the names of CONTRACT section 9, on a registry per app instance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds from submit to the card being posted: the seed's target is 10 s, its warning 60 s.
_ESCALATE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Humans decide in seconds to days.
_DECISION_BUCKETS = (5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)


# The codes bot.oversight raises; each is reported, at 0 while it does not hold.
WARNING_SIGNS = (
    "escalation_high",
    "escalation_low",
    "override_rising",
    "slow_escalation",
    "queue_growing",
    "rubber_stamp",
    "dead_deliveries",
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "signoff_requests",
            "Requests routed, by lane and risk.",
            ["lane", "risk"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "signoff_verdicts",
            "Verdicts recorded, by verdict and channel.",
            ["verdict", "channel"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "signoff_tier_escalations",
            "Items moved up to a tier because the previous tier's SLA passed.",
            ["tier"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "signoff_pending_requests",
            "Requests waiting for a verdict, by current tier.",
            ["tier"],
            registry=self.registry,
        )
        self.time_to_escalate = Histogram(
            "signoff_time_to_escalate_seconds",
            "Seconds from submit to the approval card being posted, per channel with "
            "reviewers of the tier.",
            ["channel"],
            buckets=_ESCALATE_BUCKETS,
            registry=self.registry,
        )
        self.time_to_decision = Histogram(
            "signoff_time_to_decision_seconds",
            "Seconds from submit to the final status of an escalated request.",
            buckets=_DECISION_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "signoff_webhook_deliveries",
            "Webhook delivery attempts, by result (success, retry, dead).",
            ["result"],
            registry=self.registry,
        )
        self.dead = Gauge(
            "signoff_dead_deliveries",
            "Webhook deliveries that exhausted their retries and wait for a manual retry.",
            registry=self.registry,
        )
        self.card_update_failures = Counter(
            "signoff_card_update_failures",
            "Card edits the chat platform refused for good (not retried), by channel: copies "
            "left showing a stale card.",
            ["channel"],
            registry=self.registry,
        )

        self.warning_signs = Gauge(
            "signoff_warning_signs",
            "Warning signs holding at the last evaluation (active alerts), by sign.",
            ["sign"],
            registry=self.registry,
        )

    def render(
        self,
        pending_by_tier: Mapping[str, int],
        tiers: list[str],
        dead: int,
        active_alerts: Sequence[str] = (),
    ) -> bytes:
        """Prometheus text; gauges that live in the database are refreshed first, so every
        replica reports the same values."""
        for tier in tiers:
            self.pending.labels(tier=tier).set(pending_by_tier.get(tier, 0))
        self.dead.set(dead)
        for sign in WARNING_SIGNS:
            self.warning_signs.labels(sign=sign).set(active_alerts.count(sign))
        return generate_latest(self.registry)
