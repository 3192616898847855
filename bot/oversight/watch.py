"""The oversight watch: the seed's warning signs, evaluated on a schedule, raised as alerts.

Each sign that holds raises one alert (an `alerts` row flipped to active, and one ALERT
outbox message per alert destination written with the flip); while it keeps holding, later
evaluations only refresh its figures; when it stops holding it is cleared, which is
announced once too. Every replica runs the evaluation: the repository's conditional flip
makes exactly one of them announce each change.

`gather` is also what the web dashboard and `signoff report` read their figures from, so
all three see the same evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.domain import (
    Alert,
    ApprovalRequest,
    AuditRecord,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    new_id,
)
from bot.core.ports import Clock, Repository
from bot.oversight import figures as oversight

log = logging.getLogger("signoff.watch")

# Newest requests of the window the figures are computed over: bounds a replica's memory
# however busy the window was (the dashboard and the report; about 5 MB per 1,000). The
# watch, which runs every minute on every replica, reads fewer: rates and percentiles of
# the newest 5,000 decide a warning sign as well as those of all of them.
MAX_REQUESTS = 20_000
WATCH_REQUESTS = 5_000
MAX_AWAITING = 2_000


@dataclass(frozen=True)
class Evidence:
    """What the oversight figures are computed from, read in one go."""

    since: datetime
    requests: Sequence[ApprovalRequest]
    records: Sequence[AuditRecord]
    awaiting: Sequence[ApprovalRequest]
    pending_by_tier: dict[str, int]
    dead_deliveries: int

    def figures(
        self, now: datetime, tiers: Sequence[str], thresholds: oversight.Thresholds
    ) -> oversight.Figures:
        return oversight.compute(
            self.requests,
            self.records,
            now=now,
            tiers=tiers,
            pending_by_tier=self.pending_by_tier,
            dead_deliveries=self.dead_deliveries,
            thresholds=thresholds,
            awaiting=self.awaiting,
        )


def id_floor(at: datetime) -> str:
    """The smallest request id created at `at`: ids are a time prefix then 80 random bits."""
    return new_id("req", at)[:-16] + "0" * 16


async def gather(repo: Repository, since: datetime, *, limit: int = MAX_REQUESTS) -> Evidence:
    """The requests created since `since` (the newest `limit` of them), the audit records
    since then, the items still waiting, queue sizes and dead deliveries.

    Requests are read newest first, so a busy window costs `limit` rows, not all of them.
    """
    newest: list[ApprovalRequest] = []
    cursor: str | None = None
    while len(newest) < limit:
        page = await repo.list_requests(
            limit=min(500, limit - len(newest)), cursor=cursor, newest_first=True
        )
        newest += [r for r in page.items if r.created_at >= since]
        # Ids follow creation time, so the first item older than the window ends the read.
        if page.next_cursor is None or (page.items and page.items[-1].created_at < since):
            break
        cursor = page.next_cursor
    requests = newest[::-1]
    first = requests[0].created_at if len(requests) >= limit else since
    return Evidence(
        since=since,
        requests=requests,
        records=await repo.audit_records(since=first),
        awaiting=await repo.list_awaiting(limit=MAX_AWAITING),
        pending_by_tier=dict(await repo.pending_by_tier()),
        dead_deliveries=await repo.count_outbox(OutboxKind.WEBHOOK, OutboxStatus.DEAD),
    )


class Watch:
    """Evaluates the warning signs and keeps the `alerts` table (and the alert channels)
    in step with them."""

    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        *,
        tiers: Sequence[str],
        thresholds: oversight.Thresholds,
        window: timedelta,
        destinations: Sequence[str] = (),
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.tiers = tuple(tiers)
        self.thresholds = thresholds
        self.window = window
        self.destinations = tuple(destinations)

    async def evaluate(self) -> list[Alert]:
        """One evaluation; returns the alerts this call raised or cleared."""
        now = self.clock.now()
        evidence = await gather(self.repo, now - self.window, limit=WATCH_REQUESTS)
        holding = evidence.figures(now, self.tiers, self.thresholds).warnings
        flipped: list[Alert] = []
        seen: set[tuple[str, str]] = set()
        for warning in holding:
            seen.add((warning.code, warning.subject))
            alert = Alert(
                code=warning.code,
                subject=warning.subject,
                active=True,
                message=warning.message,
                figures=dict(warning.figures),
                raised_at=now,
                updated_at=now,
            )
            if await self.repo.flip_alert(alert, self._announce(alert, now)):
                log.warning("warning sign raised: %s %s", alert.code, alert.subject)
                flipped.append(alert)
        for stored in await self.repo.alerts(active_only=True):
            if (stored.code, stored.subject) in seen:
                continue
            cleared = Alert(
                code=stored.code,
                subject=stored.subject,
                active=False,
                message=stored.message,
                figures=stored.figures,
                raised_at=stored.raised_at,
                updated_at=now,
                cleared_at=now,
            )
            if await self.repo.flip_alert(cleared, self._announce(cleared, now)):
                log.info("warning sign cleared: %s %s", stored.code, stored.subject)
                flipped.append(cleared)
        return flipped

    def _announce(self, alert: Alert, now: datetime) -> list[OutboxMessage]:
        return [
            OutboxMessage(
                id=new_id("out", now),
                kind=OutboxKind.ALERT,
                request_id=None,
                payload={"channel": channel, "alert": alert.to_json()},
                created_at=now,
                next_attempt_at=now,
            )
            for channel in self.destinations
        ]
