"""`signoff report --html` over a simulated month, rendered in Chromium to a PNG.

The PNG is the artefact a compliance officer would be shown; it is written to the test's
tmp dir and to $SIGNOFF_ARTIFACTS_DIR when set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.oversight.watch import Watch
from storage import open_repository
from tests.e2e.serve import run
from tests.support.month import TIERS, MonthFigures, month_config, simulate_month

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")


async def seed(url: str) -> MonthFigures:
    repo = await open_repository(url, migrate=True)
    try:
        start = datetime.now(UTC) - timedelta(days=29, hours=12)
        figures = await simulate_month(repo, start, days=29)
        config = month_config()
        watch = Watch(
            repo,
            _Now(),
            tiers=[t["name"] for t in TIERS],
            thresholds=config.settings.oversight.thresholds(),
            window=timedelta(days=30),
        )
        await watch.evaluate()
        return figures
    finally:
        await repo.close()


class _Now:
    def now(self) -> datetime:
        return datetime.now(UTC)


def test_a_month_of_traffic_gives_a_readable_report(tmp_path: Path) -> None:
    database = tmp_path / "month.db"
    url = f"sqlite:///{database}"
    month = asyncio.run(seed(url))
    config = tmp_path / "signoff.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": url,
                "agents": [{"id": "invoice-bot", "key_sha256": "0" * 64}],
                "tiers": TIERS,
                "routing": {"start_tier": {"low": "junior", "medium": "junior", "high": "manager"}},
            }
        )
    )
    page = tmp_path / "oversight-report.html"

    result = run(
        "report", "--config", str(config), "--since", "30d", "--html", str(page), cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Requests  {month.requests}".replace("  ", " ") in " ".join(out.split())
    assert "possible rubber-stamping" in out, out
    assert "attention checks approved 1 of 1" in out, out
    assert "Active alerts" in out and "Warning sign: rubber stamp (web:bob)" in out
    html = page.read_text()
    for chart in ("chart-lanes", "chart-escalation", "chart-queue", "chart-decisions"):
        assert f'id="{chart}"' in html
    assert "Escalation precision" in html and "Task success rate" in html
    assert "Standing approvals:\n  0 items approved under standing approvals" in out
    assert "Model:\n  no model in use" in out
    assert "<h2>Standing approvals</h2>" in html and "<h2>Model</h2>" in html

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the report was checked but not rendered")
    sync_api = pytest.importorskip("playwright.sync_api")
    png = tmp_path / "oversight-report.png"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 900})
            view.goto(page.as_uri())
            assert view.locator("svg").count() >= 5
            overflow = view.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
            view.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = os.environ.get("SIGNOFF_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(artifacts) / png.name)
        shutil.copy(page, Path(artifacts) / page.name)
