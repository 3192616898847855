"""Resume targets besides the webhook, chosen per agent in the config and delivered through the
same outbox (same retries): a LangGraph Server and a Restate ingress played by real HTTP
servers on loopback that check the exact request, and Step Functions through botocore's
Stubber, which validates every call against the service model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from langgraph_sdk import get_client

from adapters.resume import PerAgentResumeTarget
from adapters.resume.step_functions import StepFunctionsResumeTarget
from bot.core.clock import ManualClock
from bot.core.domain import OutboxKind, OutboxMessage, OutboxStatus, Verdict
from bot.core.errors import ConfigError
from bot.core.ports import ResumeTarget
from bot.server.app import build_services
from bot.server.config import parse_config
from bot.server.services import Services
from signoff_client.hitl import GATE_KEY, verdict_from_webhook
from storage import open_repository
from tests.support.http_receiver import HttpReceiver, Recorded, Reply
from tests.support.world import TIERS, new_request

AGENT = "flow-bot"


@asynccontextmanager
async def signoff(
    tmp_path: Path,
    resume: dict[str, Any],
    env: dict[str, str] | None = None,
    target: ResumeTarget | None = None,
) -> AsyncIterator[tuple[Services, ManualClock]]:
    """Signoff's services as `signoff serve` builds them, with a manual clock."""
    config = parse_config(
        {"agents": [{"id": AGENT, "key_sha256": "0" * 64, "resume": resume}], "tiers": TIERS},
        env={},
    )
    clock = ManualClock()
    repo = await open_repository(f"sqlite:///{tmp_path / 'signoff.db'}", migrate=True)
    svc = await build_services(
        config, repo=repo, clock=clock, env=env or {}, resume=target, start_scheduler=False
    )
    try:
        async with svc.stack:
            yield svc, clock
    finally:
        await repo.close()


async def decide(svc: Services, verdict: Verdict, **fields: Any) -> str:
    """Submit a request that waits, then have a reviewer decide it."""
    fields.setdefault("confidence", 0.3)
    answer = await svc.engine.submit(AGENT, new_request(**fields))
    request_id = str(answer.response["id"])
    rationale = "" if verdict is Verdict.APPROVE else "not now"
    await svc.engine.vote(request_id, "web:sam", verdict, channel="web", rationale=rationale)
    return request_id


async def delivery(svc: Services) -> OutboxMessage:
    [message] = await svc.repo.list_outbox(kind=OutboxKind.WEBHOOK)
    return message


def expected_verdict(message: OutboxMessage) -> dict[str, Any]:
    return verdict_from_webhook(message.payload["body"]).model_dump()


# -- config ---------------------------------------------------------------------------------


def test_each_kind_is_validated_and_carried_on_the_agent() -> None:
    resume = {"kind": "restate", "ingress": "http://127.0.0.1:8080/", "on_denied": "resolve"}
    config = parse_config(
        {"agents": [{"id": "a", "key_sha256": "0" * 64, "resume": resume}]}, env={}
    )
    spec = config.settings.agent_specs()["a"]
    assert spec.resume == {
        "kind": "restate",
        "ingress": "http://127.0.0.1:8080",
        "awakeable_label": "restate_awakeable_id",
        "auth_token_env": None,
        "on_denied": "resolve",
    }
    assert spec.callback_url == "http://127.0.0.1:8080/restate/awakeables"
    assert spec.callback_prefixes == ()  # per-request callback URLs are refused
    plain = {"id": "b", "key_sha256": "0" * 64, "resume": {"kind": "webhook"}}
    assert parse_config({"agents": [plain]}, env={}).settings.agent_specs()["b"].resume is None


@pytest.mark.parametrize(
    ("agent", "path", "problem"),
    [
        ({"resume": {"kind": "restate"}}, "agents[0].resume.ingress", "Field required"),
        (
            {"resume": {"kind": "langgraph_server", "url": "x", "assistant_id": "a"}},
            "agents[0].resume.url",
            "not an http(s) URL",
        ),
        (
            {"resume": {"kind": "step_functions", "tasktoken_label": "t"}},
            "agents[0].resume.tasktoken_label",
            "unknown key",
        ),
        ({"resume": {"kind": "kafka"}}, "agents[0].resume", "does not match"),
        ({"resume": {"kind": "temporal"}}, "agents[0].resume.address", "Field required"),
        (
            {"resume": {"kind": "temporal", "address": "t:7233", "workflow_id_from": "x"}},
            "agents[0].resume.workflow_id_from",
            "`thread_id` or `labels.<key>`",
        ),
        (
            {"resume": {"kind": "azure_durable", "base_url": "http://f:7071"}},
            "agents[0].resume.system_key_env",
            "Field required",
        ),
        (
            {
                "resume": {"kind": "restate", "ingress": "http://r:8080"},
                "callback_url": "http://a:9/x",
                "webhook_secret_env": "S",
            },
            "agents[0].callback_url",
            "only used by resume kind webhook",
        ),
    ],
)
def test_config_errors_name_the_key(agent: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"agents": [{"id": "a", "key_sha256": "0" * 64, **agent}]}, env={})
    assert error.value.path == path and problem in error.value.problem


# -- LangGraph Server ---------------------------------------------------------------------


def fake_langgraph_server(rx: HttpReceiver, thread: str, waiting: Callable[[], Any]) -> None:
    """GET .../state shows the gate interrupt `waiting()` returns (None: nothing waits)."""

    def state(_: Recorded) -> Reply:
        value = waiting()
        interrupts = [] if value is None else [{"value": value, "id": "int-1"}]
        return Reply.json({"values": {}, "next": ["gate"], "tasks": [], "interrupts": interrupts})

    rx.set_handler(f"/threads/{thread}/state", state)
    rx.set_handler(f"/threads/{thread}/runs", lambda _: Reply.json({"run_id": "run-1"}))


async def test_langgraph_server_resumes_the_thread_with_a_run_command(tmp_path: Path) -> None:
    ids: list[str] = []
    with HttpReceiver() as rx:
        fake_langgraph_server(rx, "lg-42", lambda: {GATE_KEY: ids[0], "question": "Pay?"})
        rx.respond("/threads/lg-42/runs", Reply(503, headers={"retry-after": "7"}))
        resume = {
            "kind": "langgraph_server",
            "url": rx.url,
            "assistant_id": "invoice_agent",
            "api_key_env": "LANGGRAPH_API_KEY",
        }
        async with signoff(tmp_path, resume, env={"LANGGRAPH_API_KEY": "lsv2_test"}) as (
            svc,
            clock,
        ):
            ids.append(await decide(svc, Verdict.APPROVE, thread_id="lg-42"))
            await svc.worker.drain()
            first = await delivery(svc)
            assert first.status is OutboxStatus.PENDING and first.last_error == "HTTP 503"
            clock.advance(timedelta(seconds=30))
            await svc.worker.drain()
            message = await delivery(svc)
            assert message.status is OutboxStatus.DONE and message.attempts == 2

        gets = [r for r in rx.requests if r.method == "GET"]
        posts = [r for r in rx.requests if r.method == "POST"]
        assert [r.path for r in gets] == ["/threads/lg-42/state"] * 2
        assert all(r.headers["x-api-key"] == "lsv2_test" for r in gets + posts)
        ours = posts[-1].json()
        assert ours == {
            "assistant_id": "invoice_agent",
            "command": {"resume": {"int-1": expected_verdict(message)}},
        }
        assert ours["command"]["resume"]["int-1"]["status"] == "approved"

        # The same run as langgraph-sdk's client.runs.create(thread, assistant, command=...)
        async with get_client(url=rx.url, api_key="lsv2_test") as sdk:
            await sdk.runs.create("lg-42", "invoice_agent", command=ours["command"])
        from_sdk = rx.requests[-1]
        assert from_sdk.path == "/threads/lg-42/runs"
        assert from_sdk.headers["x-api-key"] == "lsv2_test"
        sent = from_sdk.json()
        assert {k: sent[k] for k in ours} == ours


async def test_langgraph_server_with_nothing_waiting_sends_no_run(tmp_path: Path) -> None:
    with HttpReceiver() as rx:
        fake_langgraph_server(rx, "lg-7", lambda: None)
        resume = {"kind": "langgraph_server", "url": rx.url, "assistant_id": "a"}
        async with signoff(tmp_path, resume) as (svc, _):
            request_id = await decide(svc, Verdict.REJECT, thread_id="lg-7")
            await svc.worker.drain()
            assert (await delivery(svc)).status is OutboxStatus.DONE
            [delivered] = [
                r
                for r in await svc.repo.audit_records(request_id=request_id)
                if r.event.event == "delivered"
            ]
        assert [r.method for r in rx.requests] == ["GET"]
        assert "x-api-key" not in rx.requests[0].headers
        assert delivered.event.data["note"] == f"nothing on thread lg-7 waits for {request_id}"


# -- Restate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "on_denied", "endpoint"),
    [
        (Verdict.APPROVE, "reject", "resolve"),
        (Verdict.REJECT, "reject", "reject"),
        (Verdict.REJECT, "resolve", "resolve"),
    ],
)
async def test_restate_completes_the_awakeable(
    tmp_path: Path, verdict: Verdict, on_denied: str, endpoint: str
) -> None:
    awakeable = "sign_1PePOqp8nAA"
    with HttpReceiver() as rx:
        resume = {
            "kind": "restate",
            "ingress": rx.url,
            "auth_token_env": "RESTATE_TOKEN",
            "on_denied": on_denied,
        }
        async with signoff(tmp_path, resume, env={"RESTATE_TOKEN": "rt"}) as (svc, _):
            await decide(svc, verdict, labels={"restate_awakeable_id": awakeable})
            await svc.worker.drain()
            message = await delivery(svc)
            assert message.status is OutboxStatus.DONE
        [hit] = rx.requests
    assert (hit.method, hit.path) == ("POST", f"/restate/awakeables/{awakeable}/{endpoint}")
    assert hit.headers["authorization"] == "Bearer rt"
    if endpoint == "resolve":
        assert hit.headers["content-type"] == "application/json"
    else:
        assert hit.headers["content-type"].startswith("text/plain")
    assert json.loads(hit.body) == expected_verdict(message)


async def test_restate_resolves_an_autonomous_request_at_once(tmp_path: Path) -> None:
    with HttpReceiver() as rx:
        async with signoff(tmp_path, {"kind": "restate", "ingress": rx.url}) as (svc, _):
            await svc.engine.submit(
                AGENT, new_request(confidence=0.95, labels={"restate_awakeable_id": "sign_1"})
            )
            await svc.worker.drain()
        [hit] = rx.requests
    assert hit.path == "/restate/awakeables/sign_1/resolve"
    assert hit.json()["status"] == "approved" and hit.json()["approved"] is True
    assert "authorization" not in hit.headers


async def test_restate_without_an_awakeable_id_is_dead_at_once(tmp_path: Path) -> None:
    with HttpReceiver() as rx:
        async with signoff(tmp_path, {"kind": "restate", "ingress": rx.url}) as (svc, _):
            await decide(svc, Verdict.APPROVE)
            await svc.worker.drain()
            message = await delivery(svc)
        assert rx.requests == []
    assert message.status is OutboxStatus.DEAD and message.attempts == 1
    assert "labels.restate_awakeable_id" in (message.last_error or "")


# -- AWS Step Functions -----------------------------------------------------------------------

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAe" + "x" * 200


@pytest.fixture
def sfn() -> Any:
    return boto3.client(
        "stepfunctions",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@asynccontextmanager
async def stepfunctions(tmp_path: Path, client: Any) -> AsyncIterator[tuple[Services, ManualClock]]:
    target = PerAgentResumeTarget(
        targets={"step_functions": StepFunctionsResumeTarget(client_factory=lambda _: client)}
    )
    resume = {"kind": "step_functions", "region": "eu-west-1"}
    async with signoff(tmp_path, resume, target=target) as running:
        yield running


async def test_step_functions_success_carries_the_verdict(tmp_path: Path, sfn: Any) -> None:
    with Stubber(sfn) as stub:
        async with stepfunctions(tmp_path, sfn) as (svc, _):
            await decide(svc, Verdict.APPROVE, labels={"sfn_task_token": TOKEN})
            message = (await svc.repo.list_outbox(kind=OutboxKind.WEBHOOK))[0]
            output = json.dumps(expected_verdict(message), separators=(",", ":"))
            stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": output})
            await svc.worker.drain()
            assert (await delivery(svc)).status is OutboxStatus.DONE
        stub.assert_no_pending_responses()


async def test_step_functions_failure_names_the_denial(tmp_path: Path, sfn: Any) -> None:
    with Stubber(sfn) as stub:
        async with stepfunctions(tmp_path, sfn) as (svc, _):
            await decide(svc, Verdict.REJECT, labels={"sfn_task_token": TOKEN})
            message = await delivery(svc)
            cause = json.dumps(expected_verdict(message), separators=(",", ":"))
            stub.add_response(
                "send_task_failure",
                {},
                {"taskToken": TOKEN, "error": "Signoff.Rejected", "cause": cause},
            )
            await svc.worker.drain()
            assert (await delivery(svc)).status is OutboxStatus.DONE
        stub.assert_no_pending_responses()
    assert json.loads(cause)["rationale"] == "not now"


async def test_step_functions_errors_retry_or_end(tmp_path: Path, sfn: Any) -> None:
    with Stubber(sfn) as stub:
        async with stepfunctions(tmp_path, sfn) as (svc, clock):
            await decide(svc, Verdict.APPROVE, labels={"sfn_task_token": TOKEN})
            stub.add_client_error("send_task_success", "ThrottlingException", http_status_code=400)
            await svc.worker.drain()
            throttled = await delivery(svc)
            assert throttled.status is OutboxStatus.PENDING
            assert "ThrottlingException" in (throttled.last_error or "")
            stub.add_client_error("send_task_success", "TaskTimedOut", http_status_code=400)
            clock.advance(timedelta(minutes=1))
            await svc.worker.drain()
            spent = await delivery(svc)
        stub.assert_no_pending_responses()
    assert spent.status is OutboxStatus.DEAD and spent.attempts == 2


async def test_an_unknown_kind_is_dead_not_guessed() -> None:
    from bot.core.ports import WebhookDelivery

    attempt = await PerAgentResumeTarget().deliver(
        WebhookDelivery("msg_1", "x", {}, None, 1, resume={"kind": "temporal"})
    )
    assert not attempt.ok and attempt.gone and "temporal" in (attempt.error or "")


# -- Azure Durable Functions ----------------------------------------------------------------
# No Functions host runs here: the server below plays the extension's documented raiseEvent
# API (POST .../instances/{id}/raiseEvent/{event}?code=<system key>: 202 accepted, 404 no
# such instance, 410 the instance already completed).

DURABLE_KEY = "durable-system-key"


def durable_extension(rx: HttpReceiver, instances: dict[str, str]) -> None:
    prefix = "/runtime/webhooks/durabletask/instances/"

    def raise_event(request: Recorded) -> Reply:
        instance, _, event = request.path.removeprefix(prefix).partition("/raiseEvent/")
        query = dict(part.split("=", 1) for part in request.query.split("&") if part)
        if query.get("code") != DURABLE_KEY:
            return Reply(401)
        if request.headers.get("content-type") != "application/json":
            return Reply(400)
        state = instances.get(instance)
        if state is None:
            return Reply(404)
        if state != "Running":
            return Reply(410)
        instances[instance] = f"Completed by {event}"
        return Reply(202)

    for instance in ("orch-1", "orch-2", "orch-gone", "orch-missing"):
        rx.set_handler(f"{prefix}{instance}/raiseEvent/SignoffVerdict", raise_event)


@pytest.mark.parametrize(
    ("instance", "state", "outcome"),
    [
        ("orch-1", "Running", OutboxStatus.DONE),
        ("orch-gone", "Completed", OutboxStatus.DEAD),
        ("orch-missing", None, OutboxStatus.DEAD),
    ],
)
async def test_azure_durable_raises_the_verdict_event(
    tmp_path: Path, instance: str, state: str | None, outcome: OutboxStatus
) -> None:
    instances = {} if state is None else {instance: state}
    with HttpReceiver() as rx:
        durable_extension(rx, instances)
        resume = {
            "kind": "azure_durable",
            "base_url": rx.url,
            "system_key_env": "DURABLE_KEY",
            "task_hub": "SignoffHub",
        }
        async with signoff(tmp_path, resume, env={"DURABLE_KEY": DURABLE_KEY}) as (svc, _):
            await decide(svc, Verdict.APPROVE, labels={"durable_instance_id": instance})
            await svc.worker.drain()
            message = await delivery(svc)
        [hit] = rx.requests
    assert message.status is outcome
    assert hit.method == "POST"
    assert "taskHub=SignoffHub" in hit.query
    assert hit.json() == expected_verdict(message)
    if outcome is OutboxStatus.DONE:
        assert instances[instance] == "Completed by SignoffVerdict"


async def test_azure_durable_takes_the_thread_id_as_the_instance(tmp_path: Path) -> None:
    instances = {"orch-2": "Running"}
    with HttpReceiver() as rx:
        durable_extension(rx, instances)
        resume = {
            "kind": "azure_durable",
            "base_url": rx.url,
            "system_key_env": "DURABLE_KEY",
            "instance_id_from": "thread_id",
        }
        async with signoff(tmp_path, resume, env={"DURABLE_KEY": DURABLE_KEY}) as (svc, _):
            await decide(svc, Verdict.REJECT, thread_id="orch-2")
            await svc.worker.drain()
            message = await delivery(svc)
    assert message.status is OutboxStatus.DONE
    assert instances["orch-2"] == "Completed by SignoffVerdict"
    assert expected_verdict(message)["approved"] is False


async def test_a_temporal_workflow_that_is_not_there_ends_the_delivery(tmp_path: Path) -> None:
    from tests.support.engines import temporal_dev_server

    with temporal_dev_server(tmp_path) as address:
        resume = {"kind": "temporal", "address": address}
        async with signoff(tmp_path, resume) as (svc, _):
            await decide(svc, Verdict.APPROVE, labels={"temporal_workflow_id": "no-such-flow"})
            await svc.worker.drain()
            message = await delivery(svc)
    assert message.status is OutboxStatus.DEAD
    assert "NOT_FOUND" in (message.last_error or "")
