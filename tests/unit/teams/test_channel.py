"""`TeamsChannel` against a fake Bot Connector: what each refusal means to the outbox."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.teams import TeamsChannel, TeamsCredentials
from adapters.teams.channel import delivery_error, retry_after_seconds
from bot.core.domain import Status
from bot.core.errors import DeliveryError
from tests.support.fake_connector import FakeConnector
from tests.unit.teams.test_cards import request, view


@pytest.fixture(scope="module")
def server() -> Iterator[FakeConnector]:
    with FakeConnector() as fake:
        yield fake


@pytest.fixture
def connector(server: FakeConnector) -> FakeConnector:
    server.reset()
    return server


@pytest.fixture
def channel(connector: FakeConnector) -> TeamsChannel:
    credentials = TeamsCredentials(tenant_id="tenant-1")
    teams = TeamsChannel.create(credentials, service_url=connector.service_url, verify=False)
    teams.rng = random.Random(3)
    return teams


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("Mon, 05 Jan 2026 09:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 05 Jan 2026 08:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "wait"),
    [
        (429, {"Retry-After": "10"}, True, (10.0, 12.0)),
        (429, {}, True, (1.0, 1.2)),
        (503, {"retry-after": "4"}, True, (4.0, 4.8)),
        (500, {}, True, None),
        (403, {}, True, None),
        (401, {}, True, None),
        (400, {}, False, None),
        (404, {}, False, None),
    ],
)
def test_delivery_error(
    status: int, headers: dict[str, str], retryable: bool, wait: tuple[float, float] | None
) -> None:
    error = delivery_error("x", status, headers, random.Random(1))
    assert error.retryable is retryable
    if wait is None:
        assert error.retry_after is None
    else:
        assert error.retry_after is not None and wait[0] <= error.retry_after <= wait[1]


async def test_post_update_remind(channel: TeamsChannel, connector: FakeConnector) -> None:
    ref = await channel.post_card(view(request()))
    [created] = connector.created
    assert created.body["tenantID"] == "tenant-1"
    assert created.body["channelData"]["tenant"] == {"id": "tenant-1"}
    assert ref["tenant_id"] == "tenant-1" and ref["activity_id"] == created.activity_id
    # The card stands alone: Teams would split text + card into two messages.
    assert "text" not in created.activity and "entities" not in created.activity
    assert [e["mentioned"]["id"] for e in created.card["msteams"]["entities"]] == [
        "aad-1",
        "aad-2",
    ]
    await channel.update_card(ref, view(request(tier="senior"), note="Escalated to senior"))
    [update] = connector.updates
    assert update.activity["conversation"]["tenantID"] == "tenant-1"
    assert "text" not in update.activity
    assert "Escalated to senior" in update.activity["summary"]
    assert "Escalated to senior" in json.dumps(update.card, ensure_ascii=False)
    assert "entities" not in update.activity or not update.activity["entities"]
    assert update.card is not None and "msteams" not in update.card
    assert connector.refused == []
    await channel.remind(ref, view(request()))
    [reply] = connector.replies
    assert reply.activity["replyToId"] == ref["activity_id"]


async def test_a_throttled_post_is_retryable_with_its_retry_after(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    connector.throttle("create", 1, retry_after="30")
    with pytest.raises(DeliveryError) as caught:
        await channel.post_card(view(request()))
    assert caught.value.retryable and caught.value.retry_after is not None
    assert 30 <= caught.value.retry_after <= 36
    assert len(connector.throttled) == 1 and connector.created == []


async def test_a_throttled_edit_is_not_retried_by_the_transport(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    ref = await channel.post_card(view(request()))
    connector.throttle("update", 1, retry_after="30")
    with pytest.raises(DeliveryError) as caught:
        await channel.update_card(ref, view(request()))
    assert caught.value.retryable
    assert len(connector.throttled) == 1  # urllib3 would otherwise sleep 30 s and PUT again


async def test_server_errors_come_back_once_with_their_status(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    connector.throttle("create", 1, retry_after=None, status=503)
    with pytest.raises(DeliveryError, match="HTTP 503") as caught:
        await channel.post_card(view(request()))
    assert caught.value.retryable and len(connector.throttled) == 1


async def test_a_malformed_post_is_not_retried(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    connector.throttle("create", 1, retry_after=None, status=400)
    with pytest.raises(DeliveryError) as caught:
        await channel.post_card(view(request()))
    assert not caught.value.retryable


async def test_editing_a_deleted_card_is_skipped(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    ref = {
        "service_url": connector.service_url,
        "conversation_id": "19:x@thread.tacv2;messageid=1",
        "activity_id": "1",
        "tenant_id": None,
        "target": "19:x@thread.tacv2",
    }
    await channel.update_card(ref, view(request()))
    assert connector.updates == []


async def test_network_errors_are_retryable() -> None:
    teams = TeamsChannel.create(TeamsCredentials(), service_url="http://127.0.0.1:9/", verify=False)
    with pytest.raises(DeliveryError) as caught:
        await teams.post_card(view(request()))
    assert caught.value.retryable


def test_verification_needs_an_app_id() -> None:
    with pytest.raises(ValueError, match="app id"):
        TeamsChannel.create(TeamsCredentials(), service_url="http://127.0.0.1:9/")


async def test_an_edit_refused_for_good_is_logged_with_the_connectors_message(
    channel: TeamsChannel, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    ref = await channel.post_card(view(request()))
    connector.throttle("update", 1, None, 400, ("BadSyntax", "Activity is malformed"))
    with (
        caplog.at_level(logging.ERROR, logger="signoff.teams"),
        pytest.raises(DeliveryError) as caught,
    ):
        await channel.update_card(ref, view(request()))
    assert not caught.value.retryable
    assert "HTTP 400: (BadSyntax) Activity is malformed" in str(caught.value)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "(BadSyntax) Activity is malformed" in record.getMessage()


def test_the_fake_connector_refuses_text_beside_a_card(connector: FakeConnector) -> None:
    created = httpx.post(
        f"{connector.url}/v3/conversations",
        json={
            "isGroup": True,
            "channelData": {"channel": {"id": "19:c@thread.tacv2"}},
            "activity": {"type": "message", "attachments": [{"contentType": "x"}]},
        },
    ).json()
    answer = httpx.put(
        f"{connector.url}/v3/conversations/{created['id']}/activities/{created['activityId']}",
        json={"type": "message", "text": "hi", "attachments": [{"contentType": "x"}]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Activity resulted into multiple skype activities"


async def test_a_direct_message_opens_the_1_1_chat_and_is_edited_there(
    channel: TeamsChannel, connector: FakeConnector
) -> None:
    ref = await channel.post_card(view(request(), target="dm:aad-1"))
    [created] = connector.created
    body = created.body
    # As Microsoft documents proactive 1:1 messages: the user the only member, not a
    # group, the tenant named.
    assert body["isGroup"] is False
    assert body["members"] == [{"id": "aad-1"}]
    assert body["tenantID"] == "tenant-1"  # botbuilder's spelling; the service reads both
    assert body["channelData"]["tenant"] == {"id": "tenant-1"}
    chat = connector.chat("aad-1")
    [sent] = connector.sent_to("aad-1")
    assert "replyToId" not in sent.activity  # a new message of the chat, not a reply
    card = sent.card
    assert card is not None and "msteams" not in card  # nobody else to @-mention in a DM
    assert "text" not in sent.activity
    assert ref == {
        "service_url": connector.service_url,
        "conversation_id": chat,
        "activity_id": sent.activity_id,
        "tenant_id": "tenant-1",
        "user_id": "aad-1",
        "target": "dm:aad-1",
    }
    decided = request(status=Status.REJECTED, decided_at=request().created_at)
    await channel.update_card(ref, view(decided, target="dm:aad-1"))
    [update] = connector.updates
    assert (update.conversation_id, update.activity_id) == (chat, sent.activity_id)
    assert update.activity["conversation"]["conversationType"] == "personal"
    assert "Rejected" in json.dumps(connector.card(chat, sent.activity_id), ensure_ascii=False)
    await channel.remind(ref, view(request(), target="dm:aad-1"))
    reminder = connector.sent_to("aad-1")[-1]
    assert "replyToId" not in reminder.activity and reminder.card is not None
    assert "msteams" not in reminder.card
    # The same user again: Teams answers with the same chat.
    again = await channel.post_card(view(request(id="req_02"), target="dm:aad-1"))
    assert again["conversation_id"] == chat


async def test_a_direct_message_needs_the_tenant(connector: FakeConnector) -> None:
    teams = TeamsChannel.create(TeamsCredentials(), service_url=connector.service_url, verify=False)
    with pytest.raises(DeliveryError, match="tenant id") as caught:
        await teams.post_card(view(request(), target="dm:aad-1"))
    assert not caught.value.retryable and connector.calls == []
    async with httpx.AsyncClient() as client:
        refused = await client.post(
            f"{connector.url}/v3/conversations",
            json={"isGroup": False, "members": [{"id": "aad-1"}]},
        )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "BadArgument"
