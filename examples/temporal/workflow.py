"""`PayInvoice`: ask Signoff, wait for the `signoff_verdict` signal, pay what was approved.

While it waits nothing runs: the workflow's state is in Temporal, and the worker may stop
and start again (or another take over) before the signal arrives.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from examples.temporal.activities import PaymentActivities

TASK_QUEUE = "payments"
BRIEF = timedelta(seconds=30)


@workflow.defn
class PayInvoice:
    def __init__(self) -> None:
        self.asked: dict[str, Any] | None = None
        self.verdict: dict[str, Any] | None = None

    @workflow.signal(name="signoff_verdict")
    def signoff_verdict(self, verdict: dict[str, Any]) -> None:
        self.verdict = verdict

    @workflow.query
    def signoff_request(self) -> dict[str, Any] | None:
        """Signoff's answer to the submit (id, status, risk, tier, reasons), once asked."""
        return self.asked

    @workflow.run
    async def run(self, invoice: dict[str, Any]) -> dict[str, Any]:
        asked = await workflow.execute_activity_method(
            PaymentActivities.ask_signoff, invoice, start_to_close_timeout=BRIEF
        )
        self.asked = asked
        await workflow.wait_condition(lambda: self.verdict is not None)
        assert self.verdict is not None
        outcome = {
            "request": asked["id"],
            "status": self.verdict["status"],
            "rationale": self.verdict["rationale"],
            # Who decided: the last vote's reviewer, or none when policy let it through.
            "by": self.verdict["votes"][-1]["name"] if self.verdict["votes"] else None,
            "paid": None,
        }
        if self.verdict["approved"]:
            # The reviewer's edit, if any: a modify changes what is paid.
            payment = self.verdict["action"]["payload"]
            await workflow.execute_activity_method(
                PaymentActivities.pay, payment, start_to_close_timeout=BRIEF
            )
            outcome["paid"] = payment
        return outcome
