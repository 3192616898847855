"""Parsing what a card click carries."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.teams.auth import TeamsCredentials, bot_configuration
from adapters.teams.bot import parse_action
from bot.core.domain import Verdict
from bot.core.errors import InvalidInput


def test_parse_action() -> None:
    action = parse_action(
        "modify",
        {
            "request_id": "req_1",
            "tier": "junior",
            "rationale": "  half  ",
            "modified_payload": '{"a": 1}',
            "msteams": {"ignored": True},
        },
    )
    assert action.verdict is Verdict.MODIFY and action.request_id == "req_1"
    assert action.tier == "junior" and action.rationale == "half"
    assert action.modified_payload == '{"a": 1}'
    bare = parse_action("approve", {"request_id": "req_1", "tier": 3, "rationale": 5})
    assert bare.tier is None and bare.rationale == "" and bare.modified_payload is None


@pytest.mark.parametrize(
    ("verb", "data", "field"),
    [
        ("approve", "req_1", "data"),
        ("bless", {"request_id": "req_1"}, "verb"),
        (None, {"request_id": "req_1"}, "verb"),
        ("approve", {}, "data.request_id"),
        ("approve", {"request_id": ""}, "data.request_id"),
    ],
)
def test_parse_action_refuses(verb: Any, data: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_action(verb, data)
    assert caught.value.field == field


def test_bot_configuration() -> None:
    multi = bot_configuration(TeamsCredentials("app", "pw"))
    assert (multi.APP_ID, multi.APP_PASSWORD, multi.APP_TYPE) == ("app", "pw", "MultiTenant")
    assert not hasattr(multi, "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL")
    single = bot_configuration(TeamsCredentials("app", "pw", "tid"), "http://keys/openid")
    assert (single.APP_TYPE, single.APP_TENANTID) == ("SingleTenant", "tid")
    assert single.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL == "http://keys/openid"
    assert single.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER == "https://api.botframework.com"
