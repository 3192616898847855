"""Signoff's Teams side against Microsoft 365 Agents Playground, Microsoft's Teams emulator.

One `signoff serve` (Teams on with `auth: none`, `service_url` at the Playground's mocked
Bot Connector) and one Playground (npm `@microsoft/m365agentsplayground`, offline, events
recording on) serve the whole module; each test drives one flow through the Playground's
own endpoints (a click is its `adaptiveCard/action` invoke, a chat line its message API)
and once through its web client in Chromium. After every test, each call Signoff made to
the connector must have been answered 2xx: the connector keeps Teams' rules (no text
beside a card in an edit, mentions that match, messages that exist), so a 4xx is a bug.

These are the slow real-engine tests (`-m slow`); without Node.js they skip and say why.
Screenshots of the card drawn by the emulator's client go to $SIGNOFF_ARTIFACTS_DIR
(default ./artifacts).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serve import Server, serve
from tests.support.http_receiver import HttpReceiver, free_port
from tests.support.playground import Event, Playground, node, playground
from tests.support.world import SECRET
from tests.unit.teams.schema import assert_adaptive_card, card_nodes

pytestmark = pytest.mark.slow

if node() is None:
    pytest.skip(
        "Node.js is missing: install node and npm to run the Microsoft 365 Agents Playground "
        "tests (scripts/ensure-playground installs the emulator itself)",
        allow_module_level=True,
    )

CHROMIUM = Path("/usr/bin/chromium")
KEY = "sk_playground_" + hashlib.sha256(os.urandom(16)).hexdigest()[:32]

# Ids shaped like a real tenant's: Entra object ids are GUIDs, Teams user ids `29:1…`, the
# bot `28:<app id>`, channels and the team `19:…@thread.tacv2`, a personal chat `a:1…`.
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT = "28:7c4a3d2e-9b1f-4e6a-8c5d-2f0e1a3b4c5d"
TEAM = "19:Kx8d2Pq4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0@thread.tacv2"  # also its General channel
GENERAL = TEAM
PAYMENTS = "19:e3b1f7a2c4d64e9f8a0b1c2d3e4f5a6b@thread.tacv2"
PERSONAL = "a:1Gu7vW9xY1zA3bC5dE7fG9hI1jK3lM5nO7pQ9rS1tU3vW5xY7zA9bC1dE3fG5hI7jK9lM1nO3pQ5rS7tU9v"
GROUP = "19:3f8a2b1c4d5e6f7a8b9c0d1e2f3a4b5c@thread.v2"


def _user(short: str, name: str, aad: str) -> dict[str, str]:
    given, surname = name.split()
    mail = f"{given.lower()}{surname[0].lower()}@contoso.onmicrosoft.com"
    return {
        "id": f"29:1{short}" + hashlib.sha256(name.encode()).hexdigest()[:60],
        "name": name,
        "userPrincipleName": mail,  # the Playground's own (misspelt) key
        "aadObjectId": aad,
        "givenName": given,
        "surname": surname,
        "email": mail,
    }


ALEX = _user("Ax", "Alex Wilber", "3f2b8c1d-5e6a-4b7c-9d0e-1f2a3b4c5d6e")  # the web client
MEGAN = _user("Bm", "Megan Bowen", "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d")
ADELE = _user("Cq", "Adele Vance", "5d6e7f8a-9b0c-4d1e-a2f3-4b5c6d7e8f9a")
ISAIAH = _user("Dr", "Isaiah Langer", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
PATTI = _user("Es", "Patti Fernandez", "9e8d7c6b-5a4f-4e3d-b2c1-0a9f8e7d6c5b")  # no tier
LYNNE = _user("Ft", "Lynne Robbins", "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f")


def teams_id(user: dict[str, str]) -> str:
    return f"teams:{user['aadObjectId']}"


PLAYGROUND_CONFIG = {
    "version": "0.1.1",
    "tenantId": TENANT,
    "bot": {"id": BOT, "name": "Signoff"},
    "currentUser": ALEX,
    "users": [MEGAN, ADELE, ISAIAH, PATTI, LYNNE],
    "personalChat": {"id": PERSONAL},
    "groupChat": {"id": GROUP, "name": "Finance approvals"},
    "team": {
        "id": TEAM,
        "name": "Finance",
        "aadGroupId": "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e",
        "channels": [{"id": PAYMENTS, "name": "Payments"}],
    },
}


def signoff_config(agent_url: str, connector: str) -> dict[str, Any]:
    return {
        "agents": [
            {
                "id": "invoice-bot",
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                "callback_url": f"{agent_url}/resume",
                "webhook_secret_env": "INVOICE_SECRET",
            }
        ],
        "routing": {
            "rules": [
                {"name": "small_refund", "when": "amount > 0.0 && amount < 100.0", "risk": "low"},
                {"name": "large_payment", "when": "amount >= 500.0", "risk": "high"},
            ],
            "start_tier": {"low": "junior", "medium": "senior", "high": "blitz"},
        },
        "tiers": [
            {
                "name": "junior",
                "sla": "1h",
                "teams_channel": GENERAL,
                "reviewers": [teams_id(ALEX), teams_id(MEGAN)],
            },
            {
                "name": "senior",
                "sla": "1h",
                "remind_after": "2s",
                "teams_channel": PAYMENTS,
                "reviewers": [teams_id(ADELE)],
            },
            # A three-second SLA: high-risk items escalate to manager while the test watches.
            {
                "name": "blitz",
                "sla": "3s",
                "teams_channel": GENERAL,
                "reviewers": [teams_id(LYNNE)],
            },
            {
                "name": "manager",
                "sla": "1h",
                "teams_channel": PAYMENTS,
                "reviewers": [teams_id(ADELE), teams_id(ISAIAH)],
            },
        ],
        "teams": {
            "enabled": True,
            "auth": "none",
            "service_url": connector,
            # Not the web client's channel: a message arriving there redraws its cards,
            # which would clear a rationale being typed.
            "alerts_channel": PAYMENTS,
        },
        "oversight": {"evaluate_every": "2s", "min_sample": 1},
        "batch": {"min_items": 2},
    }


class World:
    """The running pair, and what the tests do through them."""

    def __init__(self, server: Server, emulator: Playground) -> None:
        self.server = server
        self.emulator = emulator
        self._ids = iter(range(1000, 10_000))

    def submit(self, summary: str, *, kind: str = "refund", **fields: Any) -> str:
        body = {
            "action": {"kind": kind, "summary": summary, "payload": {"kind": kind}},
            "confidence": 0.3,
            "context": {"summary": f"Context for {summary}"},
            **fields,
        }
        response = httpx.post(
            f"{self.server.url}/v1/requests",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def status(self, rid: str) -> str:
        response = httpx.get(
            f"{self.server.url}/v1/requests/{rid}",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        return str(response.json()["status"])

    def wait_status(self, rid: str, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.status(rid) != status:
            assert time.monotonic() < deadline, f"{rid} is {self.status(rid)}, not {status}"
            time.sleep(0.1)

    def posted(self, rid: str, channel: str, timeout: float = 20.0) -> Event:
        """The `createConversation` that put `rid`'s card in `channel` (a new thread)."""
        return self.emulator.wait_for(
            f"the card of {rid} in {channel}",
            lambda e: (
                e.name == "createConversation"
                and e.body.get("channelData", {}).get("channel", {}).get("id") == channel
                and rid in _requests_on(e.card)
            ),
            timeout,
        )

    def edits(self, message_id: str) -> list[Event]:
        """Every `PUT` of that message, oldest first."""
        return [
            e
            for e in self.emulator.bot_calls()
            if e.method == "PUT" and e.url.endswith(f"/activities/{message_id}")
        ]

    def edited(self, message_id: str, what: str, match: Callable[[dict[str, Any]], bool]) -> Event:
        """The first edit of `message_id` whose card `match`es."""
        return self.emulator.wait_for(
            what,
            lambda e: (
                e.method == "PUT"
                and e.url.endswith(f"/activities/{message_id}")
                and e.card is not None
                and match(e.card)
            ),
        )

    def click(self, user: dict[str, str], created: Event, verb: str, **data: Any) -> dict[str, Any]:
        """`verb` clicked on the card `created` posted, as `user`; the card they get back."""
        thread, message_id = thread_of(created)
        card = created.card
        assert card is not None
        action_data = next(
            n["data"]
            for n in card_nodes(card)
            if n.get("type") == "Action.Execute" and n.get("verb") == verb
        )
        answer = self.emulator.invoke(user["id"], thread, message_id, verb, {**action_data, **data})
        assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
        value: dict[str, Any] = answer["value"]
        assert_adaptive_card(value)
        return value


def thread_of(created: Event) -> tuple[str, str]:
    """(conversation id of the thread, id of the message holding the card)."""
    answer = created.response
    assert isinstance(answer, dict)
    return str(answer["id"]), str(answer["activityId"])


def _requests_on(card: dict[str, Any] | None) -> set[str]:
    if card is None:
        return set()
    return {
        str(n["data"].get("request_id"))
        for n in card_nodes(card)
        if n.get("type") == "Action.Execute" and isinstance(n.get("data"), dict)
    }


def text_of(card: dict[str, Any]) -> str:
    return " ".join(
        str(n.get("text", "")) for n in card_nodes(card) if isinstance(n.get("text"), str)
    )


def live(card: dict[str, Any]) -> bool:
    """The card still has verdict buttons (`Action.Execute`) anywhere in it."""
    return any(n.get("type") == "Action.Execute" for n in card_nodes(card))


def banner(card: dict[str, Any]) -> str:
    container = next(n for n in card["body"] if n.get("type") == "Container")
    return text_of(container)


def assert_stands_alone(event: Event) -> dict[str, Any]:
    """The message holds the card alone (no text for Teams to split off); its card."""
    assert "text" not in event.activity, event.activity.get("text")
    card = event.card
    assert card is not None
    assert_adaptive_card(card)
    return card


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("playground")
    pg_port, signoff_port = free_port(), free_port()
    connector = f"http://127.0.0.1:{pg_port}/_connector/"
    with HttpReceiver() as agent:
        config = home / "signoff.yaml"
        config.write_text(json.dumps(signoff_config(agent.url, connector), indent=2))
        pg_config = home / ".m365agentsplayground.yml"
        pg_config.write_text(json.dumps(PLAYGROUND_CONFIG, indent=2))
        env = {
            "INVOICE_SECRET": SECRET,
            "SIGNOFF_OUTBOX_INTERVAL": "0.2",
            "SIGNOFF_SWEEP_INTERVAL": "0.5",
            "SIGNOFF_BATCH_INTERVAL": "0.5",
        }
        with (
            serve(home, config=config, env=env, port=signoff_port) as server,
            playground(
                home,
                port=pg_port,
                app_endpoint=f"{server.url}/api/messages",
                config=pg_config,
            ) as emulator,
        ):
            yield World(server, emulator)
            errors = [line for line in server.lines if " ERROR " in line]
            assert not errors, errors


PROBE = "signoff-tests-probe"
"""User-Agent of calls a test makes to the connector itself (not Signoff's)."""


@pytest.fixture(autouse=True)
def every_call_answered_2xx(world: World) -> Iterator[None]:
    yield
    refused = [
        (e.name, e.method, e.url, e.status, e.response)
        for e in world.emulator.bot_calls()
        if not 200 <= e.status < 300 and e.user_agent != PROBE
    ]
    assert not refused, f"the connector refused Signoff's calls: {refused}"


def test_card_in_a_channel_refusals_and_an_approval_through_the_invoke_endpoint(
    world: World,
) -> None:
    rid = world.submit("Refund order 991 for a broken lamp")
    created = world.posted(rid, PAYMENTS)
    assert created.status == 201
    card = assert_stands_alone(created)
    # The tier's reviewer is @-mentioned inside the card, where Teams draws it.
    [mention] = card["msteams"]["entities"]
    assert mention["mentioned"]["id"] == ADELE["aadObjectId"]
    assert any(
        n.get("type") == "TextBlock" and mention["text"] in n["text"] for n in card_nodes(card)
    )
    refused = world.click(PATTI, created, "approve")
    assert "Not recorded" in banner(refused) and "not a reviewer" in banner(refused)
    refused = world.click(ADELE, created, "reject")
    assert "a rationale is required to reject" in banner(refused)
    assert world.status(rid) == "pending"
    answer = world.click(ADELE, created, "approve", rationale="The lamp photo checks out")
    assert "Recorded: approved" in banner(answer)
    _, message_id = thread_of(created)
    edit = world.edited(message_id, "the card edited after the vote", lambda c: not live(c))
    assert edit.status == 200
    final = assert_stands_alone(edit)
    assert "The lamp photo checks out" in text_of(final) and "Adele Vance" in text_of(final)
    world.wait_status(rid, "approved")


def test_the_emulator_refuses_an_edit_with_text_beside_the_card(world: World) -> None:
    """What Signoff used to send: the connector's 400, as the real Bot Connector answers."""
    rid = world.submit("Refund order 5150 (a dented kettle)")
    created = world.posted(rid, PAYMENTS)
    thread, message_id = thread_of(created)
    old_style = {**created.activity, "text": "<at>Reviewer 1</at> Approval needed"}
    answer = httpx.put(
        f"{world.emulator.connector}v3/conversations/{thread}/activities/{message_id}",
        json=old_style,
        headers={"User-Agent": PROBE},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "BadSyntax",
        "message": "Activity resulted into multiple skype activities",
    }
    without_text = {k: v for k, v in old_style.items() if k != "text"}
    answer = httpx.put(
        f"{world.emulator.connector}v3/conversations/{thread}/activities/{message_id}",
        json=without_text,
        headers={"User-Agent": PROBE},
        timeout=10,
    )
    assert answer.status_code == 200


def test_escalation_edits_the_old_card_and_posts_to_the_next_tier(world: World) -> None:
    rid = world.submit("Pay ACME invoice INV-77", kind="payment", amount=900.0)
    first = world.posted(rid, GENERAL)
    assert_stands_alone(first)
    _, first_id = thread_of(first)
    escalated = world.edited(
        first_id,
        "the blitz card marked escalated",
        lambda c: "Escalated to manager" in text_of(c) and not live(c),
    )
    assert escalated.status == 200
    second = world.posted(rid, PAYMENTS)
    card = assert_stands_alone(second)
    assert {e["mentioned"]["id"] for e in card["msteams"]["entities"]} == {
        ADELE["aadObjectId"],
        ISAIAH["aadObjectId"],
    }
    refused = world.click(ADELE, second, "approve")
    assert "a rationale is required for every verdict on a high-risk item" in banner(refused)
    refused = world.click(LYNNE, second, "approve", rationale="fine by me")
    assert "not a reviewer of tier manager" in banner(refused)
    answer = world.click(ADELE, second, "approve", rationale="Contract 2026-14 covers it")
    assert "Recorded: approved" in banner(answer)
    _, second_id = thread_of(second)
    for message_id in (first_id, second_id):  # every copy is edited for everyone
        edit = world.edited(message_id, "the final card", lambda c: "Approved" in text_of(c))
        assert edit.status == 200 and not live(assert_stands_alone(edit))
    world.wait_status(rid, "approved")


def test_the_reminder_is_a_reply_in_the_cards_thread(world: World) -> None:
    rid = world.submit("Refund order 1203 (a late parcel)")
    created = world.posted(rid, PAYMENTS)
    thread, message_id = thread_of(created)
    reply = world.emulator.wait_for(
        "the reminder",
        lambda e: (
            e.method == "POST"
            and e.url.endswith(f"/activities/{message_id}")
            and e.card is not None
            and "still waiting" in text_of(e.card)
        ),
    )
    assert reply.status in (200, 201)
    assert reply.activity["replyToId"] == message_id
    assert reply.activity["conversation"]["id"] == thread
    card = assert_stands_alone(reply)
    assert "Refund order 1203" in text_of(card)
    assert card["body"][0]["text"].startswith("⏰ <at>Reviewer 1</at>")
    assert [m["mentioned"]["id"] for m in card["msteams"]["entities"]] == [ADELE["aadObjectId"]]


def test_a_batch_card_approves_the_ticked_items_and_is_edited(world: World) -> None:
    ids = [world.submit(f"Send invoice INV-{n}", kind="invoice") for n in (501, 502)]
    created = world.emulator.wait_for(
        "the batch card",
        lambda e: (
            e.name == "createConversation"
            and e.card is not None
            and all(f"pick:{rid}" in json.dumps(e.card) for rid in ids)
        ),
    )
    card = assert_stands_alone(created)
    thread, message_id = thread_of(created)
    [data] = [
        n["data"]
        for n in card_nodes(card)
        if n.get("type") == "Action.Execute" and n.get("verb") == "batch_approve"
    ]
    picks = {f"pick:{rid}": "true" for rid in ids}
    answer = world.emulator.invoke(
        ADELE["id"], thread, message_id, "batch_approve", {**data, **picks}
    )
    assert "Recorded: 2 items approved." in banner(answer["value"])
    edit = world.edited(message_id, "the closed batch card", lambda c: not live(c))
    assert edit.status == 200
    assert "All invoice items at senior decided" in text_of(assert_stands_alone(edit))
    for rid in ids:
        world.wait_status(rid, "approved")


def test_a_warning_sign_is_posted_as_a_card_in_the_alerts_channel(world: World) -> None:
    world.submit("Refund order 1300")  # every request escalates: the rate is above 40%
    alert = world.emulator.wait_for(
        "an alert card",
        lambda e: (
            e.name == "createConversation"
            and e.card is not None
            and any(a.get("title") == "Open the dashboard" for a in e.card.get("actions", []))
        ),
    )
    assert alert.status == 201
    assert alert.body["channelData"]["channel"]["id"] == PAYMENTS
    card = assert_stands_alone(alert)
    assert alert.activity["summary"] and alert.activity["summary"] in card["fallbackText"]


def test_pending_in_a_personal_chat(world: World) -> None:
    rid = world.submit("Refund order 88 (a scratched mug)", amount=12.0)
    world.posted(rid, GENERAL)
    world.emulator.say(ALEX["id"], PERSONAL, "pending")
    reply = world.emulator.wait_for(
        "the answer to pending",
        lambda e: (
            e.conversation_id == PERSONAL
            and e.card is not None
            and "Refund order 88" in text_of(e.card)
        ),
    )
    assert reply.status in (200, 201)
    queue = assert_stands_alone(reply)
    assert "wait for you" in queue["body"][0]["text"] or "waits for you" in queue["body"][0]["text"]
    [data] = [
        n["data"]
        for n in card_nodes(queue)
        if n.get("type") == "Action.Execute"
        and n.get("verb") == "approve"
        and n["data"]["request_id"] == rid
    ]
    assert data["queue"] is True
    # Approve it from the queue: the answer is the queue redrawn, the item gone from it.
    message_id = str(reply.response["id"]) if isinstance(reply.response, dict) else ""
    answer = world.emulator.invoke(
        ALEX["id"], PERSONAL, message_id, "approve", {**data, f"rationale:{rid}": "mug photo ok"}
    )
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    redrawn = answer["value"]
    assert_adaptive_card(redrawn)
    assert "Recorded: approved" in banner(redrawn)
    assert "Refund order 88" not in text_of(redrawn)
    world.wait_status(rid, "approved")


# -- the web client ---------------------------------------------------------------------


def artifacts() -> Path:
    folder = Path(os.environ.get("SIGNOFF_ARTIFACTS_DIR") or "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_approve_in_the_emulators_web_client(world: World) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    summary = "Refund order 4242 (a cracked screen)"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(world.emulator.url)
            page.get_by_text("General", exact=True).click()
            # The client shows what arrives while it is open: post the card now.
            # A kind of its own, so that no batch card lists it too.
            rid = world.submit(summary, kind="replacement", amount=40.0)
            card = page.locator(".ac-adaptiveCard", has_text=summary).first
            approve = card.get_by_role("button", name="Approve", exact=True)
            approve.wait_for(timeout=20_000)
            card.scroll_into_view_if_needed()
            before = artifacts() / "teams-playground-card-before-vote.png"
            card.screenshot(path=str(before))
            rationale = card.locator("textarea").first  # the card's Input.Text `rationale`
            rationale.click()
            # Typed key by key: the client's renderer keeps the value from key events, and
            # a value set without them is lost when the card is next redrawn.
            rationale.press_sequentially("Photo of the cracked screen attached")
            approve.click()
            sync_api.expect(card).to_contain_text("Approved", timeout=20_000)
            sync_api.expect(card.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
            sync_api.expect(card).to_contain_text("Photo of the cracked screen attached")
            after = artifacts() / "teams-playground-card-after-vote.png"
            card.screenshot(path=str(after))
        finally:
            browser.close()
    for shot in (before, after):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    world.wait_status(rid, "approved")
    created = world.posted(rid, GENERAL)
    _, message_id = thread_of(created)
    edit = world.edited(message_id, "the card edited for everyone", lambda c: not live(c))
    assert edit.status == 200
    assert re.search(r"Alex Wilber approved", text_of(edit.card or {}))
