"""Parsing what Slack sends: /signoff text, modal state, metadata, Retry-After."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.slack._commands import Command, parse_command
from adapters.slack.app import (
    actor_of,
    channel_from_external_id,
    channel_of,
    input_value,
    modal_external_id,
    parse_metadata,
    parse_payload,
)
from adapters.slack.channel import retry_after
from bot.core.domain import Verdict


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("pending", Command("pending")),
        ("  PENDING ", Command("pending")),
        ("stop invoice-bot loops on INV-1", Command("stop", "invoice-bot", "loops on INV-1")),
        ("start invoice-bot", Command("start", "invoice-bot")),
        ("start invoice-bot back to work", Command("start", "invoice-bot", "back to work")),
        ("", Command("help")),
        ("help", Command("help")),
    ],
)
def test_commands(text: str, command: Command) -> None:
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "problem"),
    [("stop", "needs the agent"), ("stop bot1", "needs a reason"), ("fly", "Unknown command")],
)
def test_bad_commands_say_what_is_wrong(text: str, problem: str) -> None:
    parsed = parse_command(text)
    assert parsed.verb == "help" and parsed.problem and problem in parsed.problem


def test_who_and_where_a_click_came_from() -> None:
    body: dict[str, Any] = {
        "user": {"id": "U1", "username": "alice", "name": "alice"},
        "channel": {"id": "C1"},
        "container": {"channel_id": "C2"},
    }
    actor = actor_of(body)
    assert (actor.reviewer, actor.name) == ("slack:U1", "alice")
    assert channel_of(body) == "C1"
    assert channel_of({"container": {"channel_id": "C2"}}) == "C2"
    assert channel_of({}) is None
    command = actor_of({"user_id": "U2", "user_name": "bob"})
    assert (command.reviewer, command.name) == ("slack:U2", "bob")


def test_the_modal_remembers_its_channel_in_external_id() -> None:
    external = modal_external_id("C0MGR", "123.456.abc")
    assert external == "signoff:C0MGR:123.456.abc"
    assert channel_from_external_id({"external_id": external}) == "C0MGR"
    assert channel_from_external_id({"external_id": ""}) is None
    assert channel_from_external_id({}) is None
    assert modal_external_id(None, "1") is None


def test_metadata_and_inputs() -> None:
    view = {
        "private_metadata": json.dumps({"request_id": "req_1", "verdict": "modify"}),
        "state": {"values": {"rationale": {"rationale": {"value": "why"}}}},
    }
    assert parse_metadata(view) == ("req_1", Verdict.MODIFY)
    assert input_value(view, "rationale") == "why"
    assert input_value(view, "modified_payload") == ""
    for bad in ["", "{", '{"request_id": "r"}', '{"request_id": "r", "verdict": "maybe"}', "[]"]:
        assert parse_metadata({"private_metadata": bad}) is None


@pytest.mark.parametrize(
    ("text", "value", "problem"),
    [
        ('{"a": 1}', {"a": 1}, None),
        ("", None, "Paste the edited payload"),
        ('{"a": ', None, "Not valid JSON"),
        ("[1]", None, "not list"),
        ('"s"', None, "not str"),
    ],
)
def test_edited_payloads(text: str, value: Any, problem: str | None) -> None:
    parsed, error = parse_payload(text)
    assert parsed == value
    assert (error is None) if problem is None else (error is not None and problem in error)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": ["3"]}, 3.0),
        ({"Retry-After": "soon"}, 1.0),
        ({}, 1.0),
    ],
)
def test_retry_after(headers: dict[str, Any], seconds: float) -> None:
    assert retry_after(SimpleNamespace(headers=headers)) == seconds
