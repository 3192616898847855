"""The web inbox in headless Chromium against a real `signoff serve` on loopback.

Needs Debian's `chromium` at /usr/bin/chromium (scripts/ensure-chromium installs it;
Playwright's own browser download is not possible here). Screenshots of every page at
1280 and 390 px go to ./artifacts (or $SIGNOFF_ARTIFACTS_DIR) for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.web.passwords import hash_password
from tests.e2e.serve import Server, serve
from tests.support.http_receiver import free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARRIVAL_TIMEOUT_MS = 10_000

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver) to run the browser tests",
        allow_module_level=True,
    )

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
expect = sync_api.expect


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


ARTIFACTS = Path(os.environ.get("SIGNOFF_ARTIFACTS_DIR") or Path(__file__).parents[2] / "artifacts")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shot(page: Any, path: Path) -> Path:
    """A full-page screenshot in the test's tmp dir, copied to the artefacts folder."""
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


def both_widths(page: Any, path: Path, name: str) -> None:
    """Screenshots of the page at 1280 and at 390 px, then back to the width it had."""
    was = page.viewport_size
    for width, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        page.reload()
        assert overflow(page) == 0, f"{name} scrolls sideways at {width} px"
        shot(page, path / f"{name}-{width}.png")
    page.set_viewport_size(was)
    page.reload()


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scrolling)."""
    width: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def submit(server: Server, body: dict[str, Any]) -> str:
    response = httpx.post(
        f"{server.url}/v1/requests",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def fetch(server: Server, rid: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/v1/requests/{rid}",
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    return body


def started(tmp_path: Path, config: Path | None = None) -> Any:
    port = free_port()
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "SIGNOFF_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    return serve(tmp_path, config=config, env=env, port=port)


PAYMENT = {
    "thread_id": "lg-42",
    "action": {
        "kind": "payment",
        "summary": "Pay INV-123 to ACME",
        "payload": {
            "invoice": "INV-123",
            "amount": 5000,
            "currency": "USD",
            "urgent": False,
            "vendor": {"name": "ACME Corp", "iban": "DE89 3704 0044 0532 0130 00"},
        },
    },
    "confidence": 0.62,
    "amount": 5000,
    "currency": "USD",
    "context": {
        "summary": "ACME's invoice matches the purchase order.",
        "recommendation": "Pay it today",
        "alternatives": ["Wait for the customer"],
        "conversation": [{"role": "customer", "content": "Please pay before Friday."}],
        "customer": {"name": "ACME", "tier": "gold"},
    },
}

# What must be on the first screen of an item, above the fold at 390x844.
FIRST_SCREEN = {
    "summary": "#item-title",
    "amount": ".first-screen .amount",
    "reason": "#why",
    "recommendation": "#recommendation",
    "who decides": "#who-decides",
    "deadline": "#deadline",
    "approve": '#vote-form button[value="approve"]',
    "reject": '#vote-form button[value="reject"]',
    "modify": "#modify-open",
}


def below_the_fold(page: Any) -> dict[str, float]:
    """The first-screen elements whose bottom edge is below the window, by name."""
    page.evaluate("window.scrollTo(0, 0)")
    height = page.viewport_size["height"]
    low = {}
    for name, selector in FIRST_SCREEN.items():
        box = page.locator(selector).bounding_box()
        assert box is not None, f"{name} ({selector}) is not drawn"
        if box["y"] + box["height"] > height:
            low[name] = box["y"] + box["height"]
    return low


def admin_page(chromium: Any, server: Server) -> Any:
    link = server.line_matching(r"  login: (http\S+)").group(1)
    assert link.startswith(f"{server.url}/login/token/")
    page = chromium.new_context(viewport=DESKTOP).new_page()
    page.goto(link)
    page.get_by_role("button", name="Sign in as admin").click()
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    return page


def test_arrival_first_screen_and_approval(chromium: Any, tmp_path: Path) -> None:
    with started(tmp_path) as server:
        page = admin_page(chromium, server)
        expect(page.get_by_text("(web:admin)")).to_be_visible()

        rid = submit(server, PAYMENT)
        row = page.locator(f'tr[data-request-id="{rid}"]')
        # No reload: the list polls for new items.
        expect(row).to_be_visible(timeout=ARRIVAL_TIMEOUT_MS)
        expect(row).to_contain_text("Large payment")
        expect(row).to_contain_text("$5,000.00")
        expect(row).to_contain_text("Needs one person")
        expect(row).not_to_contain_text("high_value_transaction")
        expect(page.locator("main")).not_to_contain_text(re.compile("lane", re.I))
        both_widths(page, tmp_path, "inbox")

        row.get_by_role("link", name="Pay INV-123 to ACME").click()
        expect(page.get_by_role("heading", name="Pay INV-123 to ACME")).to_be_visible()
        expect(page.get_by_text("Please pay before Friday.")).to_be_visible()
        # The payload as labelled fields, nested objects folded, the JSON on demand.
        expect(page.locator(".fields dt", has_text="Invoice")).to_be_visible()
        action = page.get_by_role("region", name="What the agent will do")
        expect(action.get_by_text("ACME Corp", exact=True)).to_be_visible()
        expect(action.locator("pre")).to_be_hidden()
        action.get_by_text("Payload as JSON").click()
        expect(action.locator("pre").first).to_contain_text('"iban"')
        both_widths(page, tmp_path, "item-payment")

        # At 390x844 the first screen decides: everything needed is above the fold.
        page.set_viewport_size(PHONE)
        page.reload()
        assert below_the_fold(page) == {}
        screen = page.locator(".first-screen")
        expect(screen).to_contain_text("$5,000.00")
        expect(screen).to_contain_text("Large payment: A payment of 5,000 USD is over the 500")
        expect(screen).to_contain_text("Pay it today · 62% confident")
        expect(screen).to_contain_text("Needs one person from tier")
        expect(page.locator("#deadline")).to_contain_text(
            re.compile(r"(Rejected automatically|Goes to tier \w+) at .+ if no one decides")
        )
        assert page.locator("#deadline time").get_attribute("datetime")

        page.get_by_label("Rationale").fill("Matches the PO; customer confirmed")
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.get_by_text("is recorded")).to_be_visible()
        expect(page.locator(f'tr[data-request-id="{rid}"]')).to_have_count(0)
        decided = fetch(server, rid)
        assert decided["status"] == "approved"
        [vote] = decided["votes"]
        assert vote["reviewer"] == "web:admin" and vote["channel"] == "web"
        assert vote["rationale"] == "Matches the PO; customer confirmed"
        assert overflow(page) == 0
        page.context.close()

        # The same link does not sign anyone in twice.
        link = server.line_matching(r"  login: (http\S+)").group(1)
        other = chromium.new_context().new_page()
        other.goto(link)
        expect(other.get_by_text("already used")).to_be_visible()
        other.context.close()


def test_keyboard_shortcuts(chromium: Any, tmp_path: Path) -> None:
    with started(tmp_path) as server:
        page = admin_page(chromium, server)
        low = {"action": {"kind": "invoice", "summary": "File INV-9"}, "confidence": 0.3}
        first, second = submit(server, low), submit(server, low)
        rows = page.locator("tr[data-row]")
        expect(rows).to_have_count(2, timeout=ARRIVAL_TIMEOUT_MS)
        ids = [rows.nth(i).get_attribute("data-request-id") for i in range(2)]
        assert sorted(ids) == sorted([first, second])

        page.keyboard.press("j")
        expect(rows.nth(0)).to_have_class(re.compile("selected"))
        page.keyboard.press("j")
        expect(rows.nth(1)).to_have_class(re.compile("selected"))
        expect(rows.nth(0)).not_to_have_class(re.compile("selected"))
        page.keyboard.press("k")
        expect(rows.nth(0)).to_have_class(re.compile("selected"))
        expect(rows.nth(0).get_by_role("link")).to_be_focused()

        page.keyboard.press("?")
        help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
        expect(help_dialog).to_be_visible()
        for key in ("j", "k", "a", "r", "m", "?"):
            expect(
                help_dialog.locator("dt kbd", has_text=re.compile(f"^{re.escape(key)}$"))
            ).to_be_visible()
        shot(page, tmp_path / "help-1280.png")
        page.keyboard.press("j")  # nothing moves behind the dialog
        page.keyboard.press("Escape")
        expect(help_dialog).to_be_hidden()
        expect(rows.nth(0)).to_have_class(re.compile("selected"))

        # a on the inbox opens the chosen item with Approve focused: Enter decides.
        page.keyboard.press("a")
        expect(page).to_have_url(re.compile(f"/requests/{ids[0]}#do-a$"))
        approve = page.get_by_role("button", name="Approve", exact=True)
        expect(approve).to_be_focused()

        # Typing in a field never fires a shortcut.
        page.get_by_label("Rationale").click()
        page.keyboard.type("a ram jar?")
        expect(page.get_by_label("Rationale")).to_have_value("a ram jar?")
        expect(page.locator("#modify")).not_to_have_attribute("open", "")
        expect(page.get_by_role("dialog")).to_be_hidden()
        assert fetch(server, ids[0])["votes"] == []

        # m opens the payload form, r rejects (and asks why when no rationale is given).
        page.locator("h1").click()
        page.get_by_label("Rationale").fill("")
        page.locator("h1").click()
        page.keyboard.press("r")
        expect(page.get_by_text("A rationale is required to reject an item.")).to_be_visible()
        page.get_by_label("Rationale").fill("duplicate")
        page.locator("h1").click()
        page.keyboard.press("r")
        expect(page.get_by_text("is recorded")).to_be_visible()
        assert fetch(server, ids[0])["status"] == "rejected"

        page.goto(f"{server.url}/requests/{ids[1]}")
        page.keyboard.press("a")
        expect(page.get_by_text("is recorded")).to_be_visible()
        assert fetch(server, ids[1])["status"] == "approved"
        page.context.close()


CONFIG = """
display: {{locale: en_US, timezone: Europe/Berlin}}
tiers:
  - {{name: junior, sla: 15m, reviewers: [web:alice, web:bob]}}
  - {{name: senior, sla: 1h, reviewers: [web:alice, web:bob]}}
  - {{name: manager, sla: 4h, reviewers: [web:alice, web:bob]}}
web:
  reviewers:
    alice: {{password_hash: "{alice}", name: Alice}}
    bob: {{password_hash: "{bob}", name: Bob}}
"""


def sign_in(chromium: Any, server: Server, name: str, password: str) -> Any:
    page = chromium.new_context(viewport=DESKTOP).new_page()
    page.goto(server.url + "/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    return page


def open_item(page: Any, server: Server, rid: str) -> None:
    page.goto(f"{server.url}/requests/{rid}")


def two_reviewers(tmp_path: Path) -> Path:
    config = tmp_path / "signoff.yaml"
    config.write_text(
        CONFIG.format(alice=hash_password("alice-pw"), bob=hash_password("bob-pw")),
        encoding="utf-8",
    )
    return config


def test_two_person_item_live_updates_and_tabs(chromium: Any, tmp_path: Path) -> None:
    with started(tmp_path, two_reviewers(tmp_path)) as server:
        assert not [line for line in server.lines if "login:" in line]
        two = submit(
            server,
            {
                "action": {
                    "kind": "delete",
                    "summary": "Drop the staging database",
                    "payload": {"database": "staging", "snapshot_first": True},
                },
                "confidence": 0.9,
                "reversible": False,
                "context": {"recommendation": "Drop it: staging is rebuilt nightly"},
            },
        )
        alice = sign_in(chromium, server, "alice", "alice-pw")
        bob = sign_in(chromium, server, "bob", "bob-pw")

        # Alice watches the item page and her inbox row; Bob approves elsewhere.
        open_item(alice, server, two)
        who = alice.locator("#who-decides")
        expect(who).to_contain_text("Needs two different people")
        expect(who).to_contain_text("0 of 2 approved")
        watcher = alice.context.new_page()
        watcher.goto(server.url + "/")
        row = watcher.locator(f'tr[data-request-id="{two}"]')
        expect(row).to_contain_text("0 of 2 approved")

        open_item(bob, server, two)
        bob.get_by_label("Rationale").fill("staging only")
        bob.get_by_role("button", name="Approve", exact=True).click()
        expect(bob.get_by_text("is recorded")).to_be_visible()
        assert fetch(server, two)["status"] == "pending"

        # Without a reload, both of Alice's pages show Bob's vote.
        expect(who).to_contain_text("1 of 2 approved, by Bob", timeout=ARRIVAL_TIMEOUT_MS)
        expect(alice.locator("[data-live-part=history]")).to_contain_text(
            "via the web inbox by Bob", timeout=ARRIVAL_TIMEOUT_MS
        )
        expect(row).to_contain_text("1 of 2 approved, by Bob", timeout=ARRIVAL_TIMEOUT_MS)
        watcher.close()
        both_widths(alice, tmp_path, "item-two-person")

        # Bob sees it under "Waiting on others", not in his own queue.
        bob.goto(server.url + "/")
        expect(bob.locator(f'tr[data-request-id="{two}"]')).to_have_count(0)
        bob.get_by_role("link", name=re.compile("^Waiting on others")).click()
        expect(bob.locator(f'tr[data-request-id="{two}"]')).to_contain_text("1 of 2 approved")
        both_widths(bob, tmp_path, "inbox-waiting-on-others")

        # Alice completes it; Bob's tab empties by itself and the item moves to "Decided".
        alice.get_by_label("Rationale").fill("agreed")
        alice.get_by_role("button", name="Approve", exact=True).click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        expect(bob.locator(f'tr[data-request-id="{two}"]')).to_have_count(
            0, timeout=ARRIVAL_TIMEOUT_MS
        )
        bob.get_by_role("link", name="Decided by you").click()
        expect(bob.locator(f'tr[data-request-id="{two}"]')).to_contain_text(
            "Approved by Bob, Alice"
        )
        assert fetch(server, two)["status"] == "approved"
        alice.context.close()
        bob.context.close()


def test_modify_through_the_form_shows_the_changes_everywhere(
    chromium: Any, tmp_path: Path
) -> None:
    with started(tmp_path, two_reviewers(tmp_path)) as server:
        payment = {
            **PAYMENT,
            "amount": 950,
            "action": {
                "kind": "payment",
                "summary": "Pay INV-77 to Globex",
                "payload": {
                    "invoice": "INV-77",
                    "amount": 950,
                    "urgent": False,
                    "vendor": {"name": "Globex", "country": "DE"},
                },
            },
        }
        rid = submit(server, payment)
        alice = sign_in(chromium, server, "alice", "alice-pw")
        open_item(alice, server, rid)
        expect(alice.locator(".first-screen .amount")).to_have_text("$950.00")

        # A bad number comes back named, with what was typed kept and nothing recorded.
        alice.get_by_role("link", name="Modify…").click()
        amount = alice.get_by_label("Amount", exact=True)
        # The form opens on its first field.
        expect(alice.get_by_label("Invoice", exact=True)).to_be_focused()
        assert amount.get_attribute("type") == "number"
        assert alice.get_by_label("Urgent").get_attribute("type") == "checkbox"
        alice.get_by_label("Rationale").fill("the invoice says 900")
        alice.get_by_label("Vendor / Name").fill("")
        alice.evaluate("document.getElementById('pf_1').type = 'text'")
        amount.fill("nine hundred")
        alice.get_by_role("button", name="Approve with these changes").click()
        expect(alice.get_by_text("Amount must be a number")).to_be_visible()
        assert fetch(server, rid)["votes"] == []
        shot(alice, tmp_path / "item-modify-error-1280.png")

        alice.get_by_label("Amount", exact=True).fill("900")
        alice.get_by_label("Vendor / Name").fill("Globex GmbH")
        alice.get_by_label("Urgent").check()
        alice.get_by_role("button", name="Approve with these changes").click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        modified = fetch(server, rid)
        assert modified["status"] == "modified"
        assert modified["modified_action"]["payload"] == {
            "invoice": "INV-77",
            "amount": 900,
            "urgent": True,
            "vendor": {"name": "Globex GmbH", "country": "DE"},
        }

        # The header shows the new values; the diff is on the item, the row and the audit.
        open_item(alice, server, rid)
        expect(alice.locator(".first-screen .amount")).to_have_text("$900.00")
        expect(alice.locator(".headline del")).to_have_text("$950.00")
        changes = alice.locator(".first-screen .changes")
        expect(changes).to_contain_text("Changed by Alice")
        expect(changes).to_contain_text("Amount: 950 → 900")
        expect(changes).to_contain_text("Urgent: no → yes")
        expect(changes).to_contain_text("Vendor / Name: Globex → Globex GmbH")
        both_widths(alice, tmp_path, "item-modified")

        alice.goto(server.url + "/?tab=decided")
        row = alice.locator(f'tr[data-request-id="{rid}"]')
        expect(row).to_contain_text("Amount: 950 → 900")
        expect(row).to_contain_text("Approved with changes by Alice")

        alice.goto(server.url + "/audit")
        expect(alice.get_by_text("Hash chain intact")).to_be_visible()
        event = alice.locator('li[data-event="voted"]').first
        expect(event).to_contain_text(
            re.compile(r"Approved with changes at .+ via the web inbox by Alice: the invoice")
        )
        expect(event.locator(".changes")).to_contain_text("Amount: 950 → 900")
        expect(event.locator("pre")).to_be_hidden()
        event.get_by_text("as JSON").click()
        expect(event.locator("pre")).to_contain_text('"verdict": "modify"')
        sentences = alice.locator(".audit-lines .event > p")
        expect(sentences.filter(has_text="Sent to a person at tier")).to_contain_text(
            "Large payment"
        )
        expect(sentences.filter(has_text="high_value_transaction")).to_have_count(0)
        expect(sentences.filter(has_text=re.compile("lane", re.I))).to_have_count(0)
        both_widths(alice, tmp_path, "audit")

        alice.goto(server.url + "/dashboard")
        expect(alice.locator("svg.chart")).to_have_count(6)
        expect(alice.get_by_role("img", name="Escalation rate")).to_be_visible()
        expect(alice.get_by_role("cell", name=re.compile("^Alice web:alice"))).to_be_visible()
        # The top tier sees the signed-in sessions, this one marked.
        expect(
            alice.get_by_role("cell", name=re.compile(r"^Alice \(web:alice\) this session"))
        ).to_be_visible()
        both_widths(alice, tmp_path, "dashboard")
        alice.context.close()


def test_refusals_raw_json_and_csrf(chromium: Any, tmp_path: Path) -> None:
    with started(tmp_path, two_reviewers(tmp_path)) as server:
        two = submit(
            server,
            {
                "action": {"kind": "delete", "summary": "Drop staging"},
                "confidence": 0.9,
                "reversible": False,
            },
        )
        low: dict[str, Any] = {
            "action": {"kind": "invoice", "summary": "File INV-9"},
            "confidence": 0.3,
        }
        to_modify = submit(server, {**low, "action": {**low["action"], "payload": {"amount": 9}}})
        alice = sign_in(chromium, server, "alice", "alice-pw")

        # A second vote by the same person is refused.
        open_item(alice, server, two)
        alice.get_by_label("Rationale").fill("staging only")
        alice.get_by_role("button", name="Approve", exact=True).click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        open_item(alice, server, two)
        expect(alice.get_by_text("you have already voted on this item")).to_be_visible()

        # The raw JSON editor: a bad payload comes back with the error, then a good one.
        open_item(alice, server, to_modify)
        alice.keyboard.press("m")
        alice.get_by_text("Edit the raw JSON instead").click()
        alice.get_by_label("Rationale").fill("amount was wrong")
        alice.get_by_label("Payload (a JSON object)").fill('{"amount": 10,')
        alice.get_by_role("button", name="Approve the edited JSON").click()
        expect(alice.get_by_text("The modified payload is not valid JSON")).to_be_visible()
        assert fetch(server, to_modify)["votes"] == []
        alice.get_by_label("Payload (a JSON object)").fill('{"amount": 10, "note": "checked"}')
        alice.get_by_role("button", name="Approve the edited JSON").click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        modified = fetch(server, to_modify)
        assert modified["status"] == "modified"
        assert modified["modified_action"]["payload"] == {"amount": 10, "note": "checked"}

        # A form whose CSRF token was tampered with is refused and changes nothing.
        victim = submit(server, low)
        open_item(alice, server, victim)
        alice.evaluate("document.querySelector('#vote-form input[name=csrf]').value = 'forged'")
        alice.get_by_role("button", name="Approve", exact=True).click()
        expect(alice.get_by_role("heading", name="Form expired")).to_be_visible()
        assert fetch(server, victim)["votes"] == []
        alice.context.close()
