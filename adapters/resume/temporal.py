"""Signal a Temporal workflow that waits for a verdict (the `temporal` resume target).

The workflow (through an activity: workflows do no I/O) submits the approval with its own
workflow id in the request's labels (`labels.temporal_workflow_id` by default, or uses the
workflow id as `thread_id`) and then waits on a signal; Signoff sends that signal
(`signoff_verdict` by default) with the verdict as its argument when the request is final.
Autonomous requests are signalled too, so the workflow always just waits. It needs the
`temporal` extra (`pip install 'signoff[temporal]'`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.resume.spec import TemporalResume, expect_resume, id_from
from bot.core.ports import DeliveryAttempt, WebhookDelivery
from signoff_client.hitl import verdict_from_webhook

if TYPE_CHECKING:
    from temporalio.client import Client

# A workflow that is gone or already closed cannot take the signal, now or later.
_PERMANENT = frozenset({"NOT_FOUND", "INVALID_ARGUMENT", "FAILED_PRECONDITION"})


class TemporalResumeTarget:
    """Delivers `WebhookDelivery`s of agents whose `resume.kind` is `temporal`.

    One client per (address, namespace, tls, key variable), connected on first use and kept;
    `env` is where `api_key_env` is read (default: the process environment, at connect).
    """

    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._clients: dict[tuple[str, str, bool, str | None], Client] = {}

    async def _client(self, spec: TemporalResume) -> Client:
        from temporalio.client import Client

        key = (spec.address, spec.namespace, spec.tls, spec.api_key_env)
        if key not in self._clients:
            env = os.environ if self._env is None else self._env
            api_key = env.get(spec.api_key_env) if spec.api_key_env else None
            self._clients[key] = await Client.connect(
                spec.address,
                namespace=spec.namespace,
                api_key=api_key or None,
                tls=spec.tls or bool(api_key),
            )
        return self._clients[key]

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """One attempt at signalling the request's workflow. Never raises."""
        spec = expect_resume(delivery, TemporalResume)
        if isinstance(spec, DeliveryAttempt):
            return spec
        if delivery.body.get("type") != "request.resolved":
            # The workflow took its verdict long ago; a later reversal is the agent's to read.
            return DeliveryAttempt(ok=True, note=f"{delivery.body.get('type')} is not sent")
        data = delivery.body.get("data") or {}
        workflow_id = id_from(spec.workflow_id_from, data.get("thread_id"), delivery.labels)
        if workflow_id is None:
            return DeliveryAttempt(
                ok=False, gone=True, error=f"the request has no {spec.workflow_id_from}"
            )
        try:
            from temporalio.service import RPCError
        except ImportError:
            return DeliveryAttempt(
                ok=False,
                gone=True,
                error="temporal needs temporalio: pip install 'signoff[temporal]'",
            )
        verdict = verdict_from_webhook(delivery.body)
        try:
            client = await self._client(spec)
            handle = client.get_workflow_handle(workflow_id)
            await handle.signal(spec.signal, verdict.model_dump(mode="json"))
        except RPCError as exc:
            return DeliveryAttempt(
                ok=False,
                gone=exc.status.name in _PERMANENT,
                error=f"temporal {exc.status.name}: {exc.message}",
            )
        except RuntimeError as exc:  # connecting failed: the server may come back
            return DeliveryAttempt(ok=False, error=f"temporal: {exc}")
        return DeliveryAttempt(ok=True, note=f"signalled {workflow_id}")
