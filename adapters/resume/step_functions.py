"""Answer an AWS Step Functions task token (the `.waitForTaskToken` callback pattern).

The state machine passes `$$.Task.Token` to whatever submits the approval, which puts it in
the request's labels (`labels.sfn_task_token` by default). Signoff then calls
`SendTaskSuccess(taskToken, output=<verdict JSON>)` for an approved or modified request and
`SendTaskFailure(taskToken, error="Signoff.Rejected"|"Signoff.Expired"|"Signoff.Cancelled",
cause=<verdict JSON>)` otherwise (a `Catch` on `Signoff.Rejected` then routes the denial), or
success in every case with `on_denied: succeed`. boto3 is blocking, so each call runs in a
thread; it needs the `aws` extra (`pip install 'signoff[aws]'`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.resume.spec import StepFunctionsResume, expect_resume
from bot.core.ports import DeliveryAttempt, WebhookDelivery
from signoff_client.hitl import Verdict, verdict_from_webhook

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

ClientFactory = Callable[[StepFunctionsResume], "SFNClient"]

MAX_CAUSE = 32_768
"""SendTaskFailure's `cause` limit (characters)."""

# The token is spent or wrong: no retry can help, so the delivery ends at once (dead).
_PERMANENT = frozenset({"TaskDoesNotExist", "InvalidToken", "TaskTimedOut", "InvalidOutput"})


def _boto3_client(spec: StepFunctionsResume) -> SFNClient:
    import boto3

    client: SFNClient = boto3.session.Session().client(
        "stepfunctions", region_name=spec.region, endpoint_url=spec.endpoint_url
    )
    return client


class StepFunctionsResumeTarget:
    """Delivers `WebhookDelivery`s of agents whose `resume.kind` is `step_functions`.

    `client_factory` makes the SFN client for an agent's settings (tests pass one wired to
    botocore's Stubber); clients are cached per region and endpoint.
    """

    def __init__(self, client_factory: ClientFactory | None = None) -> None:
        self._factory = client_factory or _boto3_client
        self._clients: dict[tuple[str | None, str | None], SFNClient] = {}

    async def _client(self, spec: StepFunctionsResume) -> SFNClient:
        key = (spec.region, spec.endpoint_url)
        if key not in self._clients:
            self._clients[key] = await asyncio.to_thread(self._factory, spec)
        return self._clients[key]

    async def deliver(self, delivery: WebhookDelivery) -> DeliveryAttempt:
        """One attempt at sending the task's success or failure. Never raises."""
        spec = expect_resume(delivery, StepFunctionsResume)
        if isinstance(spec, DeliveryAttempt):
            return spec
        if delivery.body.get("type") != "request.resolved":
            # A task token is answered once; the execution moved on long ago.
            return DeliveryAttempt(ok=True, note=f"{delivery.body.get('type')} is not sent")
        token = delivery.labels.get(spec.task_token_label)
        if not isinstance(token, str) or not token:
            return DeliveryAttempt(
                ok=False,
                gone=True,
                error=f"the request has no labels.{spec.task_token_label} (the task token)",
            )
        verdict = verdict_from_webhook(delivery.body)
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            return DeliveryAttempt(
                ok=False, error="boto3 is not installed (pip install 'signoff[aws]')"
            )
        try:
            client = await self._client(spec)
            if verdict.approved or spec.on_denied == "succeed":
                await asyncio.to_thread(
                    client.send_task_success, taskToken=token, output=_json(verdict)
                )
            else:
                await asyncio.to_thread(
                    client.send_task_failure,
                    taskToken=token,
                    error=f"Signoff.{verdict.status.capitalize()}",
                    cause=_cause(verdict),
                )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return DeliveryAttempt(
                ok=False, status_code=status, gone=code in _PERMANENT, error=f"{code}: {exc}"
            )
        except BotoCoreError as exc:
            return DeliveryAttempt(ok=False, error=f"{type(exc).__name__}: {exc}")
        return DeliveryAttempt(ok=True, status_code=200)


def _json(verdict: Verdict) -> str:
    return json.dumps(verdict.model_dump(), separators=(",", ":"), ensure_ascii=False)


def _cause(verdict: Verdict) -> str:
    cause = _json(verdict)
    if len(cause) <= MAX_CAUSE:
        return cause
    # Too long with the action and every vote: keep what a `Catch` branch needs to route.
    brief: dict[str, Any] = {
        "request_id": verdict.request_id,
        "status": verdict.status,
        "approved": verdict.approved,
        "action_sha256": verdict.action_sha256,
        "rationale": verdict.rationale[:20_000],
    }
    return json.dumps(brief, separators=(",", ":"), ensure_ascii=False)
