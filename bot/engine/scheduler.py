"""Periodic work on APScheduler 3 (AsyncIOScheduler, in-memory job store, every replica).

Correctness lives in the SQL claims, so a duplicate tick on two replicas is harmless and a
missed one is caught up on the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.errors import StorageError
from bot.engine.machine import Engine
from bot.engine.outbox import OutboxWorker

log = logging.getLogger("signoff.scheduler")


@dataclass(frozen=True)
class PeriodicJob:
    """Further periodic work (the oversight watch, ...): `run` every `seconds`."""

    id: str
    seconds: float
    run: Callable[[], Awaitable[object]]


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        worker: OutboxWorker,
        *,
        outbox_interval: float = 1.0,
        sweep_interval: float = 5.0,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.engine = engine
        self.worker = worker
        self._outbox_interval = outbox_interval
        self._sweep_interval = sweep_interval
        self._jobs = tuple(jobs)
        self._scheduler: AsyncIOScheduler | None = None
        self._again = False
        self._draining = False

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        scheduler.add_job(
            self.run_outbox, "interval", seconds=self._outbox_interval, id="outbox", **common
        )
        scheduler.add_job(
            self.run_sweeps, "interval", seconds=self._sweep_interval, id="sweeps", **common
        )
        for job in self._jobs:
            scheduler.add_job(
                self._guarded(job),
                "interval",
                seconds=job.seconds,
                id=job.id,
                name=job.id,
                **common,
            )
        scheduler.start()
        self._scheduler = scheduler

    @staticmethod
    def _guarded(job: PeriodicJob) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await job.run()
            except StorageError as exc:
                log.warning("%s skipped, database unavailable: %s", job.id, exc)
            except Exception:  # one failing job must not stop its next ticks
                log.exception("%s failed", job.id)

        return run

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        # Deliveries in flight get a moment to finish; the rest give their leases back, so
        # no lease is left dangling needlessly.
        await self.worker.stop()
        for _ in range(50):
            if not self._draining:
                break
            await asyncio.sleep(0.05)

    def kick(self, request_id: str | None = None) -> None:
        """Run the outbox now rather than at the next tick (called after every commit)."""
        del request_id
        self._again = True
        self.worker.wake()
        if self._scheduler is not None and not self._draining:
            self._scheduler.modify_job("outbox", next_run_time=datetime.now(UTC))

    async def run_outbox(self) -> None:
        self._draining = True
        try:
            self._again = True
            while self._again:
                self._again = False
                await self.worker.drain()
        except StorageError as exc:
            log.warning("outbox paused, database unavailable: %s", exc)
        finally:
            self._draining = False

    async def run_sweeps(self) -> None:
        try:
            await self.engine.sweep()
            await self.engine.remind()
        except StorageError as exc:
            log.warning("sweep skipped, database unavailable: %s", exc)
