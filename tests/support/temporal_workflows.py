"""A Temporal workflow that pays an invoice only after Signoff's verdict arrives as a signal.

The shape docs/agents.md shows: submit the approval from an activity (workflows do no I/O)
with the workflow's own id in the labels, then wait on the `signoff_verdict` signal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow


@activity.defn
async def ask_signoff(arguments: dict[str, Any]) -> dict[str, Any]:
    from signoff_client import AsyncSignoffClient

    async with AsyncSignoffClient(arguments["url"], arguments["key"]) as signoff:
        answer = await signoff.request_approval(
            arguments["action"],
            arguments["confidence"],
            thread_id=activity.info().workflow_id,
            amount=arguments.get("amount"),
            labels={"temporal_workflow_id": activity.info().workflow_id},
        )
    return {"id": answer.id, "status": answer.status}


@workflow.defn
class PayInvoice:
    def __init__(self) -> None:
        self.verdict: dict[str, Any] | None = None

    @workflow.signal(name="signoff_verdict")
    def signoff_verdict(self, verdict: dict[str, Any]) -> None:
        self.verdict = verdict

    @workflow.run
    async def run(self, arguments: dict[str, Any]) -> dict[str, Any]:
        asked = await workflow.execute_activity(
            ask_signoff, arguments, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self.verdict is not None)
        assert self.verdict is not None
        paid = self.verdict["action"]["payload"] if self.verdict["approved"] else None
        return {"request": asked["id"], "verdict": self.verdict, "paid": paid}
