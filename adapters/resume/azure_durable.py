"""Raise an event in a waiting Azure Durable Functions orchestration (`azure_durable`).

The orchestrator submits the approval (from an activity) with its instance id in the
request's labels (`labels.durable_instance_id` by default) and waits with
`context.wait_for_external_event("SignoffVerdict")`; Signoff then calls the extension's
documented HTTP API,
`POST {base_url}/runtime/webhooks/durabletask/instances/{id}/raiseEvent/{event}`, with the
verdict as JSON and the system key as `code`. 202 is success; 404 and 410 (no such instance,
or it already completed) end the delivery, since no retry can help.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from adapters.resume._http import HttpTarget
from adapters.resume.spec import AzureDurableResume, expect_resume, id_from
from adapters.resume.webhook import _describe, _outcome
from bot.core.ports import DeliveryAttempt, WebhookDelivery
from signoff_client.hitl import verdict_from_webhook


class AzureDurableResumeTarget(HttpTarget):
    """Delivers `WebhookDelivery`s of agents whose `resume.kind` is `azure_durable`.

    `client` is borrowed (never closed here); `env` holds the system key variable (default:
    the process environment, read at send time).
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(client, timeout)
        self._env = env

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """One attempt at raising the verdict event. Never raises."""
        spec = expect_resume(delivery, AzureDurableResume)
        if isinstance(spec, DeliveryAttempt):
            return spec
        if delivery.body.get("type") != "request.resolved":
            return DeliveryAttempt(ok=True, note=f"{delivery.body.get('type')} is not sent")
        data = delivery.body.get("data") or {}
        instance = id_from(spec.instance_id_from, data.get("thread_id"), delivery.labels)
        if instance is None:
            return DeliveryAttempt(
                ok=False, gone=True, error=f"the request has no {spec.instance_id_from}"
            )
        env = os.environ if self._env is None else self._env
        key = env.get(spec.system_key_env)
        if not key:
            return DeliveryAttempt(ok=False, error=f"{spec.system_key_env} is not set")
        params = {"code": key}
        if spec.task_hub:
            params["taskHub"] = spec.task_hub
        if spec.connection:
            params["connection"] = spec.connection
        url = (
            f"{spec.destination()}/{quote(instance, safe='')}"
            f"/raiseEvent/{quote(spec.event_name, safe='')}"
        )
        verdict = verdict_from_webhook(delivery.body)
        try:
            response = await self._http().post(
                url, params=params, json=verdict.model_dump(mode="json"), timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return DeliveryAttempt(ok=False, error=_describe(exc))
        if response.status_code in (400, 404):
            # 404: no such instance; 400: the extension refused the event's body. Neither
            # changes with a retry.
            return DeliveryAttempt(
                ok=False,
                status_code=response.status_code,
                gone=True,
                error=f"HTTP {response.status_code} for orchestration {instance}",
            )
        return _outcome(response.status_code, response.headers.get("retry-after"))
