"""An AWS Step Functions execution on moto's server, which runs state machines for real
(`.waitForTaskToken` included): the execution sends its task token to SQS, the agent submits
it to Signoff, a reviewer decides in the web inbox, and the `step_functions` resume target's
SendTaskSuccess / SendTaskFailure ends the execution.

Slow: it starts moto's server and `signoff serve`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml

from adapters.web.passwords import hash_password
from bot.core.domain import sha256_hex
from signoff_client import AsyncSignoffClient
from tests.e2e.serve import Server, serve
from tests.support.engines import moto_server
from tests.support.web_reviewer import web_vote

pytestmark = pytest.mark.slow

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server, str]]:
    tmp_path = tmp_path_factory.mktemp("sfn")
    key = f"sk_{secrets.token_hex(16)}"
    with moto_server(tmp_path) as aws:
        config = {
            "database_url": f"sqlite:///{tmp_path / 'signoff.db'}",
            "agents": [
                {
                    "id": "sfn-bot",
                    "key_sha256": sha256_hex(key),
                    "resume": {
                        "kind": "step_functions",
                        "region": "us-east-1",
                        "endpoint_url": aws,
                    },
                }
            ],
            "tiers": [
                {"name": t, "sla": "1h", "reviewers": ["web:alice"]}
                for t in ("junior", "senior", "manager")
            ],
            "web": {"reviewers": {"alice": {"password_hash": hash_password("alice-pw")}}},
        }
        path = tmp_path / "signoff.yaml"
        path.write_text(yaml.safe_dump(config))
        with serve(tmp_path, config=path, env=AWS) as server:
            yield aws, server, key


def clients(aws: str) -> tuple[Any, Any]:
    options: dict[str, Any] = {
        "endpoint_url": aws,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("sqs", **options), boto3.client("stepfunctions", **options)


def start_payment(aws: str, name: str) -> tuple[str, str, str]:
    """A state machine whose task waits for a token it sends to SQS; returns the execution
    and the token."""
    sqs, sfn = clients(aws)
    queue = sqs.create_queue(QueueName=f"{name}-approvals")["QueueUrl"]
    definition = {
        "StartAt": "AskSignoff",
        "States": {
            "AskSignoff": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue,
                    "MessageBody": {"token.$": "$$.Task.Token", "invoice.$": "$.invoice"},
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/signoff-test",
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"invoice": "INV-5"})
    )["executionArn"]
    for _ in range(30):
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return machine, execution, json.loads(messages[0]["Body"])["token"]
    raise AssertionError("the execution sent no task token")


def finished(aws: str, execution: str) -> dict[str, Any]:
    _, sfn = clients(aws)
    deadline = time.monotonic() + 30
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("verdict", "rationale", "status"),
    [("approve", "PO-77 matches", "SUCCEEDED"), ("reject", "duplicate of INV-4", "FAILED")],
)
async def test_a_task_token_waits_for_the_click(
    world: tuple[str, Server, str], verdict: str, rationale: str, status: str
) -> None:
    aws, server, key = world
    _, execution, token = await asyncio.to_thread(start_payment, aws, f"pay-{verdict}")
    async with AsyncSignoffClient(server.url, key) as signoff:
        answer = await signoff.request_approval(
            {"kind": "payment", "summary": "Pay INV-5", "payload": {"invoice": "INV-5"}},
            0.95,
            amount=950,
            thread_id=execution,
            labels={"sfn_task_token": token},
        )
    assert answer.status == "pending"
    await asyncio.to_thread(
        web_vote, server.url, answer.id, verdict, rationale, name="alice", password="alice-pw"
    )
    described = await asyncio.to_thread(finished, aws, execution)
    assert described["status"] == status
    if status == "SUCCEEDED":
        output = json.loads(described["output"])
        assert output["approved"] is True and output["rationale"] == rationale
        assert output["request_id"] == answer.id
    else:
        assert described.get("error") == "Signoff.Rejected"
        _, sfn = clients(aws)
        events = sfn.get_execution_history(executionArn=execution)["events"]
        # moto records SendTaskFailure's error but not its cause (the verdict JSON), which
        # tests/integration/test_resume_targets.py checks against botocore's Stubber.
        [failed] = [e for e in events if e["type"] == "TaskFailed"]
        assert failed["taskFailedEventDetails"]["error"] == "Signoff.Rejected"
