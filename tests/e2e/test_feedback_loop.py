"""`signoff export training` and `signoff calibrate` as subprocesses over a seeded database.

The history is made the way production makes it: agents submit through the engine,
reviewers vote through it, agents report outcomes through it, into a real SQLite file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from bot.core.domain import Verdict
from bot.server.app import build_services
from bot.server.config import load_config
from storage import open_repository
from tests.e2e.serve import run
from tests.support.world import new_request

pytestmark = pytest.mark.slow

CONFIG = """\
database_url: sqlite:///{db}
agents: [{{id: invoice-bot, key_sha256: "{digest}"}}]
tiers:
  - {{name: junior, sla: 15m, reviewers: [web:jan]}}
  - {{name: senior, sla: 1h, reviewers: [web:sam]}}
  - {{name: manager, sla: 4h, reviewers: [web:max]}}
"""

# With the default thresholds (0.8 / 0.5): below 0.5 escalates, 0.5-0.8 proceeds with a
# review card, 0.8 and up is autonomous. Every problem sits at 0.60 or below, every fine
# item at 0.66 or above, so review_at 0.65 is the cheapest setting that catches them all.
REJECTED = (0.30, 0.35, 0.40, 0.45)
REVERSED = (0.55, 0.60)
MODIFIED = 0.20
CONFIRMED = tuple(round(0.66 + k / 100, 2) for k in range(14))  # 0.66 .. 0.79
RIGHT_OUTCOMES = (0.90, 0.92)
UNJUDGED = 0.85


async def seed(path: Path) -> None:
    config = load_config(path, env={})
    repo = await open_repository(config.settings.database_url, migrate=True)
    services = await build_services(config, repo=repo, env={}, start_scheduler=False)
    engine = services.engine
    try:
        async with services.stack:

            async def submit(confidence: float, n: int) -> str:
                new = new_request(
                    kind="invoice",
                    summary=f"File INV-{n}",
                    payload={"invoice": n},
                    confidence=confidence,
                    context={"recommendation": f"file INV-{n}"},
                )
                return str((await engine.submit("invoice-bot", new)).response["id"])

            n = 0
            for confidence in REJECTED:
                n += 1
                rid = await submit(confidence, n)
                await engine.vote(rid, "web:max", Verdict.REJECT, channel="web", rationale="dup")
            for confidence in REVERSED:
                n += 1
                rid = await submit(confidence, n)
                await engine.vote(rid, "web:max", Verdict.REVERSE, channel="web", rationale="no")
            n += 1
            rid = await submit(MODIFIED, n)
            await engine.vote(
                rid,
                "web:sam",
                Verdict.MODIFY,
                channel="web",
                rationale="wrong amount",
                modified_payload={"invoice": n, "amount": 90},
            )
            for confidence in CONFIRMED:
                n += 1
                rid = await submit(confidence, n)
                await engine.vote(rid, "web:jan", Verdict.CONFIRM, channel="web")
            for confidence in RIGHT_OUTCOMES:
                n += 1
                rid = await submit(confidence, n)
                await engine.record_outcome("invoice-bot", rid, True, "filed")
            await submit(UNJUDGED, n + 1)
    finally:
        await repo.close()


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    config = tmp_path / "signoff.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "signoff.db", digest="0" * 64))
    asyncio.run(seed(config))
    return config


def test_export_training_writes_every_judged_item(seeded: Path, tmp_path: Path) -> None:
    cfg = ["--config", str(seeded)]
    exported = run("export", "training", "--format", "jsonl", *cfg, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    # 4 rejected + 2 reversed + 1 modified + 14 confirmed + 2 outcomes; the unjudged is out.
    assert len(rows) == 23
    verdicts = [row["verdict"]["verdict"] if row["verdict"] else None for row in rows]
    assert verdicts == ["reject"] * 4 + ["reverse"] * 2 + ["modify"] + ["confirm"] * 14 + [None] * 2
    modified = rows[6]
    assert modified["verdict"]["reviewer"] == "web:sam"
    assert modified["verdict"]["rationale"] == "wrong amount"
    assert modified["verdict"]["modified_action"]["payload"] == {"invoice": 7, "amount": 90}
    assert modified["features"]["confidence"] == MODIFIED
    assert modified["routing"]["lane"] == "escalate"
    assert modified["proposal"]["recommendation"] == "file INV-7"
    assert [row["label"]["override"] for row in rows].count(True) == 7
    assert rows[-1]["outcome"]["correct"] is True and rows[-1]["label"]["needed_human"] is False

    only = run("export", "training", "--overrides-only", *cfg, cwd=tmp_path)
    assert len(only.stdout.splitlines()) == 7

    target = tmp_path / "training.csv"
    written = run(
        "export", "training", "--format", "csv", "--output", str(target), *cfg, cwd=tmp_path
    )
    assert written.returncode == 0, written.stderr
    assert written.stdout == "" and "23 training examples written" in written.stderr
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(table) == 23 and table[0]["verdict"] == "reject"

    bad = run("export", "training", "--format", "xml", *cfg, cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid choice: 'xml'" in bad.stderr


def test_calibrate_suggests_thresholds_from_the_history(seeded: Path, tmp_path: Path) -> None:
    cfg = ["--config", str(seeded)]
    result = run("calibrate", "--target-recall", "0.95", *cfg, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "over 24 requests" in out and "23 with ground truth" in out
    assert "7 of them needed a human" in out
    current = next(line for line in out.splitlines() if line.startswith("current"))
    # Now: the five items below 0.5 escalate, all of them problems; the two reversed miss.
    assert "20.8% (5/24)" in current and "100.0% (5/5)" in current and "71.4% (5/7)" in current
    suggested = next(line for line in out.splitlines() if line.startswith("suggested"))
    assert "29.2% (7/24)" in suggested and "100.0% (7/7)" in suggested
    assert "routing:\n  autonomous_at: 0.8\n  review_at: 0.65\n" in out

    machine = run("calibrate", "--json", *cfg, cwd=tmp_path)
    body = json.loads(machine.stdout)
    assert body["suggested"]["review_at"] == 0.65
    assert body["current"]["recall"] == {"value": 5 / 7, "part": 5, "whole": 7}

    bad = run("calibrate", "--target-recall", "1.5", *cfg, cwd=tmp_path)
    assert bad.returncode == 2 and "--target-recall" in bad.stderr
    too_few = run("calibrate", "--since", "2099-01-01", *cfg, cwd=tmp_path)
    assert too_few.returncode == 1
    assert "cannot calibrate yet: only 0 requests with ground truth" in too_few.stderr
