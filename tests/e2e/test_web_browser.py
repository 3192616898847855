"""The web inbox in headless Chromium against a real `signoff serve` on loopback.

Needs Debian's `chromium` at /usr/bin/chromium (Playwright's own browser download is not
possible here). Screenshots go to the test's tmp dir, and also to $SIGNOFF_ARTIFACTS_DIR
when that is set, so CI can keep them.
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


def shot(page: Any, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("SIGNOFF_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path


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
    "action": {"kind": "payment", "summary": "Pay INV-123 to ACME", "payload": {"inv": 123}},
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


def test_embedded_default_login_link_arrival_and_approval(chromium: Any, tmp_path: Path) -> None:
    with started(tmp_path) as server:
        link = server.line_matching(r"  login: (http\S+)").group(1)
        assert link.startswith(f"{server.url}/login/token/")
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(link)
        page.get_by_role("button", name="Sign in as admin").click()
        expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
        expect(page.get_by_text("(web:admin)")).to_be_visible()

        rid = submit(server, PAYMENT)
        row = page.locator(f'tr[data-request-id="{rid}"]')
        # No reload: the list polls for new items.
        expect(row).to_be_visible(timeout=ARRIVAL_TIMEOUT_MS)
        expect(row).to_contain_text("high_value_transaction")
        expect(row).to_contain_text("0 of 1")
        shot(page, tmp_path / "inbox-1280.png")

        row.get_by_role("link", name="Pay INV-123 to ACME").click()
        expect(page.get_by_role("heading", name="Pay INV-123 to ACME")).to_be_visible()
        expect(page.get_by_text("Please pay before Friday.")).to_be_visible()
        shot(page, tmp_path / "item-1280.png")
        page.get_by_label("Rationale").fill("Matches the PO; customer confirmed")
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.get_by_text("is recorded")).to_be_visible()
        expect(page.locator(f'tr[data-request-id="{rid}"]')).to_have_count(0)
        decided = fetch(server, rid)
        assert decided["status"] == "approved"
        [vote] = decided["votes"]
        assert vote["reviewer"] == "web:admin" and vote["channel"] == "web"
        assert vote["rationale"] == "Matches the PO; customer confirmed"

        # The same link does not sign anyone in twice.
        other = chromium.new_context().new_page()
        other.goto(link)
        expect(other.get_by_text("already used")).to_be_visible()
        other.context.close()

        # Phone width: nothing scrolls sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        second = submit(server, {**PAYMENT, "thread_id": "lg-43"})
        expect(page.locator(f'tr[data-request-id="{second}"]')).to_be_visible(
            timeout=ARRIVAL_TIMEOUT_MS
        )
        shot(page, tmp_path / "inbox-390.png")
        assert overflow(page) == 0
        for path in (f"/requests/{second}", "/dashboard", "/audit"):
            page.goto(server.url + path)
            assert overflow(page) == 0, path
        shot(page, tmp_path / "audit-390.png")
        page.goto(f"{server.url}/requests/{second}")
        shot(page, tmp_path / "item-390.png")
        context.close()


CONFIG = """
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
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url + "/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    return page


def open_item(page: Any, server: Server, rid: str) -> None:
    page.goto(f"{server.url}/requests/{rid}")


def test_two_reviewers_reject_modify_refusal_csrf_and_dashboard(
    chromium: Any, tmp_path: Path
) -> None:
    config = tmp_path / "signoff.yaml"
    config.write_text(
        CONFIG.format(alice=hash_password("alice-pw"), bob=hash_password("bob-pw")),
        encoding="utf-8",
    )
    with started(tmp_path, config) as server:
        assert not [line for line in server.lines if "login:" in line]
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
        to_reject = submit(server, low)
        to_modify = submit(server, {**low, "action": {**low["action"], "payload": {"amount": 9}}})

        alice = sign_in(chromium, server, "alice", "alice-pw")
        bad = alice.context.new_page()
        bad.goto(server.url + "/login")
        expect(bad.get_by_text("Signed in as")).to_be_visible()  # same browser, same session
        bad.close()

        # Two-person rule: Alice approves, is refused a second vote, Bob completes it.
        open_item(alice, server, two)
        expect(alice.get_by_text("needs 2 different reviewers")).to_be_visible()
        alice.get_by_label("Rationale").fill("staging only")
        alice.get_by_role("button", name="Approve", exact=True).click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        open_item(alice, server, two)
        expect(alice.get_by_text("you have already voted on this item")).to_be_visible()
        assert fetch(server, two)["status"] == "pending"
        bob = sign_in(chromium, server, "bob", "bob-pw")
        expect(bob.locator(f'tr[data-request-id="{two}"]')).to_contain_text("1 of 2")
        open_item(bob, server, two)
        bob.get_by_label("Rationale").fill("agreed")
        bob.get_by_role("button", name="Approve", exact=True).click()
        expect(bob.get_by_text("is recorded")).to_be_visible()
        assert fetch(server, two)["status"] == "approved"

        # Reject needs a rationale.
        open_item(bob, server, to_reject)
        bob.get_by_role("button", name="Reject").click()
        expect(bob.get_by_text("A rationale is required to reject an item.")).to_be_visible()
        bob.get_by_label("Rationale").fill("duplicate")
        bob.get_by_role("button", name="Reject").click()
        expect(bob.get_by_text("is recorded")).to_be_visible()
        assert fetch(server, to_reject)["status"] == "rejected"

        # Modify: a bad payload comes back with the error, then a good one goes through.
        open_item(alice, server, to_modify)
        alice.get_by_text("Modify the payload").click()
        alice.get_by_label("Rationale").fill("amount was wrong")
        alice.get_by_label("Payload (a JSON object)").fill('{"amount": 10,')
        alice.get_by_role("button", name="Modify", exact=True).click()
        expect(alice.get_by_text("The modified payload is not valid JSON")).to_be_visible()
        assert fetch(server, to_modify)["votes"] == []
        shot(alice, tmp_path / "item-error-1280.png")
        alice.get_by_label("Payload (a JSON object)").fill('{"amount": 10}')
        alice.get_by_role("button", name="Modify", exact=True).click()
        expect(alice.get_by_text("is recorded")).to_be_visible()
        modified = fetch(server, to_modify)
        assert modified["status"] == "modified"
        assert modified["modified_action"]["payload"] == {"amount": 10}

        # A form whose CSRF token was tampered with is refused and changes nothing.
        victim = submit(server, low)
        open_item(alice, server, victim)
        alice.evaluate("document.querySelector('#vote-form input[name=csrf]').value = 'forged'")
        alice.get_by_role("button", name="Approve", exact=True).click()
        expect(alice.get_by_role("heading", name="Form expired")).to_be_visible()
        assert fetch(server, victim)["votes"] == []

        alice.goto(server.url + "/dashboard")
        expect(alice.locator("svg.chart")).to_have_count(6)
        expect(alice.get_by_role("img", name="Escalation rate")).to_be_visible()
        expect(alice.get_by_role("cell", name=re.compile("^Alice web:alice"))).to_be_visible()
        # The top tier sees the signed-in sessions, this one marked.
        expect(
            alice.get_by_role("cell", name=re.compile(r"^Alice \(web:alice\) this session"))
        ).to_be_visible()
        shot(alice, tmp_path / "dashboard-1280.png")
        alice.goto(server.url + "/audit")
        expect(alice.get_by_text("Hash chain intact")).to_be_visible()
        alice.context.close()
        bob.context.close()
