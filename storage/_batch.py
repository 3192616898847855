"""Group commit: changes that arrive while a transaction is being written share the next one.

Every change ends its transaction by taking the audit chain's head (a row lock on
PostgreSQL, the database's write lock on SQLite) and holds it through COMMIT, so writers
of one process queue there one transaction at a time. Writing the changes that queued up
meanwhile in ONE transaction (each still whole: its rows, outbox messages and audit events
commit together or not at all) spends that serial section once for all of them.

A batch is optimistic: if any change in it is refused (a version conflict, a taken
idempotency key, a constraint) before COMMIT, the whole transaction rolls back and each
change is written again on its own, so every caller sees exactly the outcome it would have
seen alone. A failure of the COMMIT itself is not retried (it may have committed): every
caller of the batch gets that error, as a lone change's caller would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.core.domain import Change

log = logging.getLogger("signoff.storage")

# Enough to absorb a burst; small enough that one refused change re-does little work.
MAX_BATCH = 64


class BatchRefused(Exception):
    """Raised by `write_many` when the batch rolled back before COMMIT: safe to redo alone."""


class ApplyBatcher:
    """Runs `write_one` for a lone change and `write_many` for changes that queued up."""

    def __init__(
        self,
        write_one: Callable[[Change], Awaitable[None]],
        write_many: Callable[[Sequence[Change]], Awaitable[None]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write_one = write_one
        self._write_many = write_many
        self._max_batch = max_batch
        self._queue: list[tuple[Change, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def apply(self, change: Change) -> None:
        """Write `change`; returns once it committed, raises what writing it alone raises."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((change, done))
        if self._drainer is None or self._drainer.done():
            # A task of its own: a caller that is cancelled must not take the queue with it.
            self._drainer = asyncio.create_task(self._drain(), name="signoff-apply")
        await done

    async def close(self) -> None:
        """Let the changes already queued finish."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)

    async def _drain(self) -> None:
        batch: list[tuple[Change, asyncio.Future[None]]] = []
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                if len(batch) > 1 and await self._wrote_together(batch):
                    continue
                for change, done in batch:
                    try:
                        await self._write_one(change)
                    except Exception as exc:
                        _settle(done, exc)
                    else:
                        _settle(done, None)
        except BaseException as exc:  # cancelled (shutdown): no caller may wait forever
            for _, done in (*batch, *self._queue):
                _settle(done, exc)
            self._queue.clear()
            raise

    async def _wrote_together(self, batch: Sequence[tuple[Change, asyncio.Future[None]]]) -> bool:
        """True when the batch's outcome is settled; False when each must be written alone."""
        try:
            await self._write_many([change for change, _ in batch])
        except BatchRefused as exc:  # each alone next, which reports its own outcome
            log.debug("batch of %d refused (%s); writing each alone", len(batch), exc.__cause__)
            return False
        except Exception as exc:
            for _, done in batch:
                _settle(done, exc)
            return True
        for _, done in batch:
            _settle(done, None)
        return True


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # its caller was cancelled
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
