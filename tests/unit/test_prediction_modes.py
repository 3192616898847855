"""prediction.mode through the engine: shadow stores the score and changes nothing; active
escalates above the threshold with reason `predicted_escalation`; risk rules still trump."""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.clock import ManualClock
from bot.core.domain import AuditEvent, Status
from bot.core.errors import ConfigError
from bot.core.learning import PredictionModel
from bot.oversight.predict import ActiveModel, train
from bot.server.config import parse_config
from storage import InMemoryRepository
from tests.support.synthetic import history
from tests.support.world import TIERS, World, new_request

NIGHT = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVENT = AuditEvent(event="model_trained", at=NIGHT, actor="test", channel="cli")


@functools.cache
def model() -> PredictionModel:
    return train(history()).as_model(NIGHT, "test")


async def world(mode: str, at: datetime, **prediction: Any) -> World:
    config = parse_config(
        {
            "agents": [{"id": "support-bot", "key_sha256": "0" * 64}],
            "tiers": TIERS,
            "routing": {"review_sample_rate": 0.0},
            "prediction": {"mode": mode, **prediction},
        },
        env={},
    )
    repo = InMemoryRepository()
    stored = await repo.add_model(model(), EVENT)
    await repo.activate_model(stored.version, NIGHT, EVENT)
    w = World(repo, config, ManualClock(at))
    active = ActiveModel(repo)
    await active.refresh()
    assert active.version == stored.version
    w.engine.predictor = active
    return w


def refund(**fields: Any) -> Any:
    values: dict[str, Any] = {
        "kind": "refund",
        "summary": "Refund order 77",
        "payload": {"order": 77},
        "confidence": 0.9,
        "amount": 40.0,
        "labels": {"customer_tier": "new", "customer_id": "c9"},
    }
    return new_request(**{**values, **fields})


async def submitted(w: World, new: Any) -> Any:
    result = await w.engine.submit("support-bot", new)
    return await w.engine.get(str(result.response["id"]))


async def test_shadow_scores_and_changes_nothing() -> None:
    w = await world("shadow", NIGHT)
    risky = await submitted(w, refund())
    assert risky.predicted_escalation is not None and risky.predicted_escalation > 0.7
    assert risky.lane.value == "autonomous" and risky.status is Status.APPROVED
    w.clock.advance(NOON - NIGHT)
    calm = await submitted(w, refund(labels={"customer_tier": "gold"}))
    assert calm.predicted_escalation is not None and calm.predicted_escalation < 0.3


async def test_active_escalates_a_high_score_with_its_reason() -> None:
    w = await world("active", NIGHT)
    risky = await submitted(w, refund())
    assert risky.status is Status.PENDING and risky.reasons == ("predicted_escalation",)
    assert risky.tier == "senior"
    routed = [r.event for r in await w.repo.audit_records() if r.event.event == "routed"]
    assert routed[-1].reason == "predicted_escalation"
    # Risk rules still trump: a large payment escalates for its rule, at high risk.
    payment = await submitted(
        w, new_request(kind="payment", confidence=0.95, amount=900.0, labels=refund().labels)
    )
    assert payment.reasons == ("high_value_transaction",) and payment.risk.value == "high"
    w.clock.advance(NOON - NIGHT)
    calm = await submitted(w, refund(labels={"customer_tier": "gold"}))
    assert calm.status is Status.APPROVED and calm.lane.value == "autonomous"


async def test_a_higher_threshold_lets_more_through() -> None:
    w = await world("active", NIGHT, threshold=0.999)
    assert (await submitted(w, refund())).lane.value == "autonomous"


async def test_a_model_that_does_not_match_its_digest_is_not_used() -> None:
    repo = InMemoryRepository()
    damaged = dataclasses.replace(model(), metrics={**model().metrics, "threshold": 0.1})
    stored = await repo.add_model(damaged, EVENT)
    await repo.activate_model(stored.version, NIGHT, EVENT)
    active = ActiveModel(repo)
    await active.refresh()
    assert active.version is None
    assert active.score(refund_input(), NIGHT) is None


async def test_refresh_follows_activation_and_deactivation() -> None:
    w = await world("active", NIGHT)
    model = w.engine.predictor
    assert isinstance(model, ActiveModel) and model.version == 1
    second = await w.repo.add_model(model_with_threshold(0.5), EVENT)
    await w.repo.activate_model(second.version, NIGHT, EVENT)
    await model.refresh()
    assert model.version == 2
    await w.repo.activate_model(None, NIGHT, EVENT)
    await model.refresh()
    assert model.version is None
    # Without a model nothing is scored, and active mode routes as if prediction were off.
    unscored = await submitted(w, refund())
    assert unscored.predicted_escalation is None and unscored.lane.value == "autonomous"


def model_with_threshold(threshold: float) -> PredictionModel:
    metrics = {**model().metrics, "threshold": threshold}
    return dataclasses.replace(
        model(),
        metrics=metrics,
        sha256=PredictionModel.digest(model().features, model().parameters, metrics),
    )


def refund_input() -> Any:
    from routing import RoutingInput

    return RoutingInput(
        request_id="req_x",
        agent_id="support-bot",
        action_kind="refund",
        action_summary="Refund",
        confidence=0.9,
    )


@pytest.mark.parametrize(
    ("prediction", "path"),
    [
        ({"mode": "sometimes"}, "prediction.mode"),
        ({"threshold": 1.5}, "prediction.threshold"),
        ({"window": "1d"}, "prediction.window"),
    ],
)
def test_bad_prediction_config_names_the_key(prediction: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"prediction": prediction}, env={})
    assert caught.value.path == path


def test_a_margin_at_or_above_the_threshold_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"prediction": {"threshold": 0.3, "prepare_margin": 0.3}}, env={})
    assert caught.value.path == "prediction"
    assert "prepare_margin (0.3) must be below threshold (0.3)" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config({"prediction": {"prepare_margin": -0.1}}, env={})
    assert caught.value.path == "prediction.prepare_margin"


@pytest.mark.parametrize(
    ("prediction", "prepare_above", "likely_at"),
    [
        ({"mode": "active"}, 0.5, 0.5),  # the default margin, 0.2
        ({"mode": "active", "threshold": 0.1}, 0.05, 0.05),  # half a low threshold
        ({"mode": "active", "prepare_margin": 0}, None, 0.7),  # nothing prepared
        ({"mode": "shadow", "prepare_margin": 0.1}, None, 0.7),  # shadow routes nothing
        ({"mode": "off"}, None, None),
    ],
)
def test_the_prepared_band_and_the_flag(
    prediction: dict[str, Any], prepare_above: float | None, likely_at: float | None
) -> None:
    loaded = parse_config({"prediction": prediction}, env={})
    assert loaded.settings.prediction.prepare_above == prepare_above
    assert loaded.settings.prediction.likely_at == likely_at
    assert loaded.policy.prepare_above == prepare_above
