"""The workflow's two activities: ask Signoff (workflows do no I/O), and pay.

Signoff's address and key live in the worker (SIGNOFF_URL, SIGNOFF_API_KEY), never in the
workflow's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from signoff_client import AsyncSignoffClient


class PaymentActivities:
    def __init__(self, url: str, key: str, report: Callable[[str], None]) -> None:
        self._url = url
        self._key = key
        self._report = report

    @activity.defn
    async def ask_signoff(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """Submit the payment with the workflow's id as a label: Signoff's `temporal` resume
        target signals that workflow with the verdict, whether a person decides or policy
        lets the payment through at once."""
        workflow_id = activity.info().workflow_id
        async with AsyncSignoffClient(self._url, self._key) as signoff:
            answer = await signoff.request_approval(
                {
                    "kind": "payment",
                    "summary": f"Pay {invoice['number']}: {invoice['amount']:,.2f} USD",
                    "payload": {"invoice": invoice["number"], "amount": invoice["amount"]},
                },
                0.9,
                thread_id=workflow_id,
                amount=invoice["amount"],
                currency="USD",
                labels={"temporal_workflow_id": workflow_id},
            )
        return answer.model_dump(mode="json")

    @activity.defn
    async def pay(self, payment: dict[str, Any]) -> str:
        done = f"paid {payment['invoice']}: {float(payment['amount']):,.2f} USD"
        self._report(done)
        return done
