"""Complete a Restate awakeable through the ingress HTTP API.

A Restate handler creates an awakeable, submits the approval with its id in the request's
labels (`labels.restate_awakeable_id` by default) and awaits it; Signoff then calls
`POST {ingress}/restate/awakeables/{id}/resolve` (JSON: the verdict) when the request is
approved or modified, and `.../reject` (text: the verdict's JSON) when it is rejected, expired
or cancelled — or resolve in every case with `on_denied: resolve`. Autonomous requests are
resolved at once too, so the handler always just awaits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from adapters.resume._http import HttpTarget
from adapters.resume.spec import RestateResume, expect_resume
from adapters.resume.webhook import _describe, _outcome
from bot.core.domain import canonical_json
from bot.core.ports import DeliveryAttempt, WebhookDelivery
from signoff_client.hitl import verdict_from_webhook


class RestateResumeTarget(HttpTarget):
    """Delivers `WebhookDelivery`s of agents whose `resume.kind` is `restate`.

    `client` is borrowed (never closed here); `env` holds the ingress token variable
    (default: the process environment, read at send time).
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
        """One attempt at resolving or rejecting the request's awakeable. Never raises."""
        spec = expect_resume(delivery, RestateResume)
        if isinstance(spec, DeliveryAttempt):
            return spec
        if delivery.body.get("type") != "request.resolved":
            # An awakeable completes once; the agent proceeded long ago.
            return DeliveryAttempt(ok=True, note=f"{delivery.body.get('type')} is not sent")
        awakeable = delivery.labels.get(spec.awakeable_label)
        if not isinstance(awakeable, str) or not awakeable:
            return DeliveryAttempt(
                ok=False,
                gone=True,
                error=f"the request has no labels.{spec.awakeable_label} (the awakeable id)",
            )
        verdict = verdict_from_webhook(delivery.body)
        url = f"{spec.ingress}/restate/awakeables/{quote(awakeable, safe='')}"
        headers: dict[str, str] = {}
        env = os.environ if self._env is None else self._env
        if spec.auth_token_env and env.get(spec.auth_token_env):
            headers["authorization"] = f"Bearer {env[spec.auth_token_env]}"
        try:
            if verdict.approved or spec.on_denied == "resolve":
                response = await self._http().post(
                    f"{url}/resolve",
                    json=verdict.model_dump(),
                    headers=headers,
                    timeout=self._timeout,
                )
            else:
                response = await self._http().post(
                    f"{url}/reject",
                    content=canonical_json(verdict.model_dump()).encode(),
                    headers={**headers, "content-type": "text/plain; charset=utf-8"},
                    timeout=self._timeout,
                )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return DeliveryAttempt(ok=False, error=_describe(exc))
        return _outcome(response.status_code, response.headers.get("retry-after"))
