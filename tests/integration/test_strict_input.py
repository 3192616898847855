"""Strict input everywhere (issue 14 section 4): numbers are numbers, identities name their
platform, and nothing nested deeper than 32 levels is stored or can break a read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.slack.app import parse_payload
from bot.core.domain import Status, Verdict
from bot.core.errors import InvalidInput
from bot.core.jsondepth import MAX_DEPTH, text_depth, value_depth
from bot.server.app import build_services
from bot.server.services import Services
from signoff_client.canonical import tolerating_depth
from tests.conftest import RepoFactory
from tests.integration.test_web_inbox import (
    KEY,
    as_reviewer,
    config,
    make_app,
    submit,
    vote,
)

SMALL: dict[str, Any] = {"action": {"kind": "invoice", "summary": "File INV-9"}, "confidence": 0.9}
PENDING: dict[str, Any] = {**SMALL, "confidence": 0.3}


def nested(levels: int) -> Any:
    """A JSON object nested `levels` deep ({"a": {"a": ... {}}})."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def svc(repo_factory: RepoFactory) -> AsyncIterator[Services]:
    services = await build_services(config(), repo=await repo_factory(), start_scheduler=False)
    services.wait_poll_interval = 0.05
    async with services.stack:
        yield services


@pytest.fixture
def app(svc: Services) -> Any:
    return make_app(svc)


@pytest.fixture
async def agent(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://signoff",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


@pytest.mark.parametrize(
    "field",
    [
        {"confidence": True},
        {"confidence": "0.9"},
        {"amount": "5000"},
        {"amount": True},
        {"sentiment": False},
        {"sentiment": "-0.9"},
    ],
)
async def test_numbers_must_be_json_numbers(agent: httpx.AsyncClient, field: Any) -> None:
    response = await agent.post("/v1/requests", json={**SMALL, **field})
    assert response.status_code == 422, response.text
    [name] = field
    assert name in json.dumps(response.json())


async def test_integers_are_still_numbers(agent: httpx.AsyncClient) -> None:
    response = await agent.post("/v1/requests", json={**SMALL, "confidence": 1, "amount": 20})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("requested_by", ["U0REQ", "email:someone@example.com", "slack:", ""])
async def test_requested_by_must_be_platform_colon_id(
    agent: httpx.AsyncClient, requested_by: str
) -> None:
    response = await agent.post("/v1/requests", json={**SMALL, "requested_by": requested_by})
    assert response.status_code == 422, response.text
    assert "requested_by" in response.text


@pytest.mark.parametrize("where", ["payload", "labels", "context"])
@pytest.mark.parametrize("levels", [MAX_DEPTH, 5000])
async def test_submissions_nested_too_deep_are_422_naming_the_limit(
    agent: httpx.AsyncClient, svc: Services, where: str, levels: int
) -> None:
    body: dict[str, Any] = json.loads(json.dumps(SMALL))
    if where == "payload":
        body["action"]["payload"] = "DEEP"
    else:
        body[where] = {"deep": "DEEP"}
    # Written by hand: 5000 levels are beyond what the json module itself can encode.
    deep_text = '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)
    text = json.dumps(body).replace('"DEEP"', deep_text)
    response = await agent.post(
        "/v1/requests", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"] == "invalid_body"
    assert f"limit of {MAX_DEPTH} levels" in response.text
    assert (await svc.repo.list_requests(limit=5)).items == ()


async def test_a_deep_but_allowed_modify_never_breaks_a_read(
    agent: httpx.AsyncClient, svc: Services, app: Any
) -> None:
    rid = await submit(agent, PENDING)
    deepest = nested(MAX_DEPTH)
    assert value_depth(deepest) == MAX_DEPTH
    with pytest.raises(InvalidInput) as refused:
        await svc.engine.vote(
            rid,
            "web:alice",
            Verdict.MODIFY,
            channel="web",
            rationale="deeper",
            modified_payload=nested(MAX_DEPTH + 1),
        )
    assert f"limit of {MAX_DEPTH} levels" in refused.value.problem
    done = await svc.engine.vote(
        rid,
        "web:alice",
        Verdict.MODIFY,
        channel="web",
        rationale="edited",
        modified_payload=deepest,
    )
    assert done.status is Status.MODIFIED
    for path in (f"/v1/requests/{rid}", f"/v1/requests/{rid}/wait?timeout=0", "/v1/requests"):
        response = await agent.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    assert (await agent.get(f"/v1/requests/{rid}")).json()["modified_action"]["payload"] == deepest
    async with as_reviewer(app, "alice") as alice:
        assert (await alice.get(f"/requests/{rid}")).status_code == 200


async def test_the_web_form_refuses_a_deep_modify_naming_the_limit(
    agent: httpx.AsyncClient, svc: Services, app: Any
) -> None:
    rid = await submit(agent, PENDING)
    async with as_reviewer(app, "alice") as alice:
        for levels in (MAX_DEPTH + 1, 5000):
            response = await vote(
                alice,
                rid,
                "modify",
                "too deep",
                modified_payload=json.dumps(nested(levels)) if levels < 900 else "[" * levels,
            )
            assert response.status_code == 422
            assert f"the limit is {MAX_DEPTH} levels" in response.text
    assert (await svc.engine.get(rid)).status is Status.PENDING


def test_the_slack_modal_refuses_a_deep_modify_naming_the_limit() -> None:
    for text in (json.dumps(nested(MAX_DEPTH + 1)), "[" * 5000 + "]" * 5000):
        value, problem = parse_payload(text)
        assert value is None and problem is not None
        assert f"the limit is {MAX_DEPTH} levels" in problem
    value, problem = parse_payload(json.dumps(nested(MAX_DEPTH)))
    assert problem is None and value_depth(value) == MAX_DEPTH


def test_the_teams_modify_refuses_a_deep_payload_naming_the_limit() -> None:
    from adapters.teams.bot import _payload

    with pytest.raises(InvalidInput) as refused:
        _payload('{"a":' * 5000 + "1" + "}" * 5000)
    assert f"the limit is {MAX_DEPTH} levels" in refused.value.problem


def test_text_depth_ignores_brackets_inside_strings() -> None:
    assert text_depth('{"a": "[[[[{{{{", "b": ["x\\"[["]}') == 2
    assert text_depth("1") == 0


async def test_data_stored_before_the_limit_never_makes_a_read_fail(
    agent: httpx.AsyncClient, svc: Services
) -> None:
    """A request stored with a 900-level modify (before inputs were depth-limited) reads."""
    import dataclasses

    from bot.core.domain import Action, Change

    rid = await submit(agent, PENDING)
    stored = await svc.repo.get(rid)
    assert stored is not None
    deep = dataclasses.replace(stored, modified_action=Action("invoice", "x", nested(900)))
    await svc.repo.apply(Change(request=deep, expected_version=stored.version))
    paths = (f"/v1/requests/{rid}", f"/v1/requests/{rid}/wait?timeout=0", "/v1/requests")

    async def read_all(frames_above: int) -> list[int]:
        # Each level is one more frame on the stack, as a server deep in its own call
        # chain (middleware, a test runner's workers) has.
        if frames_above:
            return await read_all(frames_above - 1)
        return [(await agent.get(path)).status_code for path in paths]

    assert await read_all(0) == [200, 200, 200]
    assert await read_all(200) == [200, 200, 200]
    got = tolerating_depth((await agent.get(f"/v1/requests/{rid}")).json)
    assert value_depth(got["modified_action"]["payload"], stop_after=1000) == 900
