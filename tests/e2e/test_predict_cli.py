"""`signoff predict train|list|show|activate|deactivate` on a recorded history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.core.domain import ApprovalRequest, Change
from storage import SqlRepository, upgrade
from tests.e2e.serve import run
from tests.support.synthetic import history

pytestmark = pytest.mark.slow


def record(url: str, requests: list[ApprovalRequest]) -> None:
    async def write() -> None:
        repo = SqlRepository.connect(url)
        try:
            await asyncio.gather(*(repo.apply(Change(request=r)) for r in requests))
        finally:
            await repo.close()

    upgrade(url)
    asyncio.run(write())


def test_train_activate_and_deactivate(tmp_path: Path) -> None:
    env = {"SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}"}

    def signoff(*args: str) -> tuple[int, str, str]:
        done = run(*args, cwd=tmp_path, env=env)
        return done.returncode, done.stdout, done.stderr

    record(env["SIGNOFF_DATABASE_URL"], history(count=300, days=20))
    code, _, err = signoff("predict", "train", "--since", "3650d")
    assert code == 1
    assert "cannot train yet: 300 labelled items over 19 days" in err
    assert "missing: 200 more labelled items and 11 more days of history" in err

    record(env["SIGNOFF_DATABASE_URL"], history(count=1700, days=60, seed=5)[300:])
    code, out, err = signoff("predict", "train", "--since", "3650d")
    assert code == 0, err
    assert "model 1: logistic regression" in out and "ROC AUC 0.9" in out
    assert "calibration (predicted -> observed, count)" in out
    assert "stored as version 1" in err

    code, out, _ = signoff("predict", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["version"] == 1 and not listed["active"] and len(listed["sha256"]) == 64
    code, out, _ = signoff("predict", "show", "1", "--json")
    shown = json.loads(out)
    assert shown["parameters"]["kind"] == "logistic_regression"
    assert len(shown["parameters"]["coef"]) == len(shown["features"])

    assert signoff("predict", "activate", "7")[0] == 1
    code, out, _ = signoff("predict", "activate", "1")
    assert code == 0 and "model 1 is active (prediction.mode is off" in out
    assert "1" in signoff("predict", "list")[1].splitlines()[1]
    assert "active" in signoff("predict", "list")[1]
    code, out, _ = signoff("predict", "deactivate")
    assert code == 0 and out.strip() == "model 1 deactivated"
    events = [json.loads(line)["event"] for line in signoff("audit", "export")[1].splitlines()]
    assert events == ["model_trained", "model_activated", "model_deactivated"]
    assert signoff("audit", "verify")[0] == 0


def test_train_without_scikit_learn_says_what_to_install(tmp_path: Path) -> None:
    # A package named sklearn that fails to import stands in for a missing scikit-learn.
    fake = tmp_path / "fake" / "sklearn"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no scikit-learn here')\n")
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "PYTHONPATH": str(tmp_path / "fake"),
    }
    record(env["SIGNOFF_DATABASE_URL"], history(count=600, days=40))
    done = run("predict", "train", "--since", "3650d", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "install signoff[predict]" in done.stderr
