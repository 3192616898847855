"""Resume a thread on a LangGraph Server (or LangGraph Platform) deployment.

For each decided request: `GET {url}/threads/{thread_id}/state`, find the interrupt the
request decides (Signoff's gate, a HumanInTheLoopMiddleware or an Agent Inbox interrupt, see
`signoff_client.hitl`), then `POST {url}/threads/{thread_id}/runs` with
`{"assistant_id": ..., "command": {"resume": {interrupt_id: answer}}}` — the body
langgraph-sdk's `client.runs.create(thread_id, assistant_id, command={"resume": ...})` sends.
Reading the state first makes a retried delivery harmless: once the graph has moved on,
nothing matches and the delivery ends without a second run. Plain httpx keeps the server
free of the optional SDK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from adapters.resume._http import HttpTarget
from adapters.resume.spec import LangGraphServerResume, expect_resume
from adapters.resume.webhook import _describe, _outcome
from bot.core.ports import DeliveryAttempt, WebhookDelivery
from signoff_client.hitl import answer_for, interrupt_matches, verdict_from_webhook


class LangGraphServerResumeTarget(HttpTarget):
    """Delivers `WebhookDelivery`s of agents whose `resume.kind` is `langgraph_server`.

    `client` is borrowed (never closed here); `env` holds the API key variables (default:
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
        """One attempt: read the thread, resume its matching interrupt. Never raises."""
        spec = expect_resume(delivery, LangGraphServerResume)
        if isinstance(spec, DeliveryAttempt):
            return spec
        body = delivery.body
        if body.get("type") != "request.resolved":
            return DeliveryAttempt(ok=True, note=f"{body.get('type')} is not sent to a thread")
        data = body["data"]
        thread_id = data.get("thread_id")
        if not thread_id:
            return DeliveryAttempt(
                ok=False, gone=True, error="the request has no thread_id to resume"
            )
        headers = {"accept": "application/json"}
        env = os.environ if self._env is None else self._env
        if spec.api_key_env and env.get(spec.api_key_env):
            headers["x-api-key"] = env[spec.api_key_env]
        thread = f"{spec.url}/threads/{quote(str(thread_id), safe='')}"
        try:
            state = await self._http().get(
                f"{thread}/state", headers=headers, timeout=self._timeout
            )
            if not state.is_success:
                return _outcome(state.status_code, state.headers.get("retry-after"))
            waiting = _match(state.json(), data)
            if waiting is None:
                return DeliveryAttempt(
                    ok=True,
                    status_code=state.status_code,
                    note=f"nothing on thread {thread_id} waits for {data.get('id')}",
                )
            value, interrupt_id, schema = waiting
            answer = answer_for(value, verdict_from_webhook(body), schema)
            run = await self._http().post(
                f"{thread}/runs",
                json={
                    "assistant_id": spec.assistant_id,
                    "command": {"resume": {interrupt_id: answer}},
                },
                headers=headers,
                timeout=self._timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return DeliveryAttempt(ok=False, error=_describe(exc))
        except ValueError as exc:  # a state that is not JSON, or an unanswerable interrupt
            return DeliveryAttempt(ok=False, error=f"unreadable thread state: {exc}")
        return _outcome(run.status_code, run.headers.get("retry-after"))


def _match(state: Any, data: Mapping[str, Any]) -> tuple[Any, str, Mapping[str, Any] | None] | None:
    """The (value, id, response_schema) of the interrupt `data` decides, if one waits."""
    if not isinstance(state, Mapping):
        raise ValueError("thread state is not an object")
    interrupts = state.get("interrupts")
    if not isinstance(interrupts, list):
        interrupts = [i for task in state.get("tasks") or [] for i in task.get("interrupts") or []]
    for item in interrupts:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            continue
        schema = item.get("response_schema")
        schema = schema if isinstance(schema, Mapping) else None
        if interrupt_matches(item.get("value"), data, schema):
            return item.get("value"), item["id"], schema
    return None
