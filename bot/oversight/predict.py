"""Predictive escalation: learn from the recorded history which requests need a person.

`train` fits a logistic regression (scikit-learn, the optional extra `signoff[predict]`) on
requests with ground truth, oldest 80% for fitting and newest 20% for evaluation, and
returns plain JSON: feature names, the scaler's means and scales, coefficients, intercept.
Serving (`ModelScorer`) evaluates that JSON with the standard library alone, so the server
never unpickles anything and needs neither numpy nor scikit-learn; the evaluation metrics
are computed with the same scorer, so what `predict show` reports is what serving does.

Features: confidence, amount (log), sentiment and its trajectory (`context.
sentiment_trajectory`, last minus first), reversibility, hour of day (as a point on a
circle), summary and payload size, the agent's and the customer's recent escalation rate
(the share of escalated requests among their last 50), and one column per action kind,
domain, agent and label value seen at least 5 times in the training part (labels with more
than 20 distinct values, such as a customer id, are identities and get no columns).
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.domain import ApprovalRequest, canonical_json
from bot.core.errors import SignoffError
from bot.core.learning import PredictionModel
from bot.core.ports import Repository
from bot.oversight.calibrate import NotEnoughHistory
from bot.oversight.figures import Rate, needed_a_human
from bot.oversight.training import has_ground_truth
from routing import Lane, RoutingInput

log = logging.getLogger("signoff.predict")

MIN_LABELLED = 500
MIN_SPAN = timedelta(days=30)
RATE_WINDOW = 50
VOCAB_MIN = 5
# A label with more distinct values than this is an identity (a customer id), not a
# category: one column per value would only memorise the training part.
MAX_LABEL_VALUES = 20
NO_SKILL_AUC = 0.6
DEFAULT_THRESHOLD = 0.7
MODEL_KIND = "logistic_regression"
CALIBRATION_BINS = 10
Z_CLIP = 5.0

NUMERIC = (
    "confidence",
    "amount_log",
    "sentiment",
    "sentiment_trend",
    "irreversible",
    "hour_sin",
    "hour_cos",
    "summary_length",
    "payload_size",
    "agent_escalation_rate",
    "customer_escalation_rate",
)


class PredictUnavailable(SignoffError):
    """scikit-learn is not installed: training needs the `signoff[predict]` extra."""


# -- features -------------------------------------------------------------------------------


def customer_of(inp: RoutingInput) -> str | None:
    """The customer a request is about: `labels.customer_id`, `labels.customer`, or
    `context.customer.id`; None when it names none."""
    for key in ("customer_id", "customer"):
        value = inp.labels.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    customer = inp.context.get("customer")
    if isinstance(customer, Mapping):
        value = customer.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


class RecentRates:
    """The share of escalated requests among the last `window` of each agent and customer.

    Training walks the history in time order through one of these; serving keeps one per
    process, fed by every submission it routes (so a fresh replica starts from the prior).
    """

    def __init__(self, window: int = RATE_WINDOW) -> None:
        self._window = window
        self._seen: dict[str, deque[bool]] = {}

    def rate(self, key: str | None) -> float | None:
        seen = self._seen.get(key) if key is not None else None
        return sum(seen) / len(seen) if seen else None

    def observe(self, inp: RoutingInput, escalated: bool) -> None:
        for key in _rate_keys(inp):
            if key is not None:
                self._seen.setdefault(key, deque(maxlen=self._window)).append(escalated)


def _rate_keys(inp: RoutingInput) -> tuple[str, str | None]:
    customer = customer_of(inp)
    return f"agent:{inp.agent_id}", f"customer:{customer}" if customer is not None else None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _trend(context: Mapping[str, Any]) -> float:
    trajectory = context.get("sentiment_trajectory")
    if isinstance(trajectory, list) and len(trajectory) >= 2:
        return _number(trajectory[-1]) - _number(trajectory[0])
    return 0.0


def raw_features(
    inp: RoutingInput, at: datetime, rates: RecentRates, prior: float
) -> tuple[dict[str, float], set[str]]:
    """The numeric features and the categorical tokens of one request at time `at`."""
    hour = (at.hour + at.minute / 60) / 24 * 2 * math.pi
    agent_key, customer_key = _rate_keys(inp)
    agent_rate = rates.rate(agent_key)
    customer_rate = rates.rate(customer_key)
    numeric = {
        "confidence": _number(inp.confidence),
        "amount_log": math.log1p(max(_number(inp.amount), 0.0)),
        "sentiment": _number(inp.sentiment),
        "sentiment_trend": _trend(inp.context),
        "irreversible": 0.0 if inp.reversible else 1.0,
        "hour_sin": math.sin(hour),
        "hour_cos": math.cos(hour),
        "summary_length": math.log1p(len(inp.action_summary)),
        "payload_size": math.log1p(len(canonical_json(dict(inp.action_payload)))),
        "agent_escalation_rate": prior if agent_rate is None else agent_rate,
        "customer_escalation_rate": prior if customer_rate is None else customer_rate,
    }
    tokens = {f"kind={inp.action_kind}", f"domain={inp.domain}", f"agent={inp.agent_id}"}
    for key, value in inp.labels.items():
        if isinstance(value, str | bool | int) and len(str(value)) <= 100:
            tokens.add(f"label:{key}={json.dumps(value)}")
    return numeric, tokens


def _vector(numeric: Mapping[str, float], tokens: set[str], features: Sequence[str]) -> list[float]:
    return [numeric[name] if name in numeric else float(name in tokens) for name in features]


# -- serving --------------------------------------------------------------------------------


class ModelScorer:
    """A stored model evaluated in plain Python: standardise, dot product, logistic.

    Raises ValueError on construction when the parameters do not fit together (lengths,
    kind, non-finite numbers), so a damaged row is refused rather than scored.
    """

    def __init__(
        self, features: Sequence[str], params: Mapping[str, Any], version: int = 0
    ) -> None:
        if params.get("kind") != MODEL_KIND:
            raise ValueError(f"model {version}: unknown kind {params.get('kind')!r}")
        self.version = version
        self.features = tuple(features)
        self.mean = [float(v) for v in params["mean"]]
        self.scale = [float(v) for v in params["scale"]]
        self.coef = [float(v) for v in params["coef"]]
        self.intercept = float(params["intercept"])
        self.prior = float(params["rate_prior"])
        sizes = {len(self.features), len(self.mean), len(self.scale), len(self.coef)}
        if len(sizes) != 1:
            raise ValueError(f"model {version}: parameter lengths differ ({sizes})")
        numbers = [*self.mean, *self.scale, *self.coef, self.intercept, self.prior]
        if not all(math.isfinite(v) for v in numbers) or any(s == 0 for s in self.scale):
            raise ValueError(f"model {version}: parameters are not finite numbers")

    @classmethod
    def of(cls, model: PredictionModel) -> ModelScorer:
        """The scorer of a stored model (see the class for what it raises)."""
        return cls(model.features, model.parameters, model.version)

    def score_vector(self, x: Sequence[float]) -> float:
        # Standardised values are clipped: a feature far outside anything seen in training
        # (a payload ten times larger) must not swing the score on a coefficient fitted
        # where it barely varied.
        z = self.intercept + sum(
            min(max((value - m) / s, -Z_CLIP), Z_CLIP) * c
            for value, m, s, c in zip(x, self.mean, self.scale, self.coef, strict=True)
        )
        # The logistic function, written to stay finite for large |z|.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def score(self, inp: RoutingInput, at: datetime, rates: RecentRates) -> float:
        numeric, tokens = raw_features(inp, at, rates, self.prior)
        return self.score_vector(_vector(numeric, tokens, self.features))


class ActiveModel:
    """The engine's `Predictor`: the database's active model, reloaded by `refresh`.

    Only a model whose stored content matches its sha256 is used; anything else is logged
    and leaves requests unscored (routing then ignores prediction).
    """

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._scorer: ModelScorer | None = None
        self._sha256: str | None = None
        self.rates = RecentRates()

    @property
    def version(self) -> int | None:
        return self._scorer.version if self._scorer else None

    async def refresh(self) -> None:
        model = await self._repo.active_model()
        if model is None:
            self._scorer = self._sha256 = None
            return
        if model.sha256 == self._sha256:
            return
        if not model.intact:
            log.error("model %d does not match its sha256: not used", model.version)
            self._scorer = self._sha256 = None
            return
        try:
            self._scorer = ModelScorer.of(model)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("model %d cannot be used: %s", model.version, exc)
            self._scorer = self._sha256 = None
            return
        self._sha256 = model.sha256
        log.info("escalation model %d in use", model.version)

    def score(self, inp: RoutingInput, at: datetime) -> float | None:
        scorer = self._scorer
        if scorer is None:
            return None
        try:
            return scorer.score(inp, at, self.rates)
        except (ArithmeticError, TypeError, ValueError) as exc:
            log.warning("model %d could not score %s: %s", scorer.version, inp.request_id, exc)
            return None

    def observe(self, inp: RoutingInput, escalated: bool) -> None:
        self.rates.observe(inp, escalated)


# -- evaluation (plain Python, shared by training and the report) ---------------------------


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2  # ranks i+1..j, averaged over the tie
        rank_sum += average_rank * sum(1 for _, label in ranked[i:j] if label)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def quality(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> dict[str, Any]:
    """ROC AUC, precision and recall at `threshold`, Brier score and calibration bins."""
    flagged = [label for score, label in zip(scores, labels, strict=True) if score > threshold]
    problems = sum(labels)
    bins = []
    for index in range(CALIBRATION_BINS):
        low, high = index / CALIBRATION_BINS, (index + 1) / CALIBRATION_BINS
        inside = [
            (s, y)
            for s, y in zip(scores, labels, strict=True)
            if low <= s < high or (index == CALIBRATION_BINS - 1 and s == 1.0)
        ]
        if inside:
            bins.append(
                {
                    "from": low,
                    "to": high,
                    "count": len(inside),
                    "predicted": sum(s for s, _ in inside) / len(inside),
                    "observed": sum(1 for _, y in inside if y) / len(inside),
                }
            )
    return {
        "count": len(labels),
        "positives": problems,
        "auc": roc_auc(scores, labels),
        "threshold": threshold,
        "flagged": len(flagged),
        "precision": Rate(sum(flagged), len(flagged)).value,
        "recall": Rate(sum(flagged), problems).value,
        "brier": sum((s - float(y)) ** 2 for s, y in zip(scores, labels, strict=True)) / len(labels)
        if labels
        else None,
        "calibration": bins,
    }


# -- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    """A fitted model ready to store: JSON parameters, metrics and what to warn about."""

    features: tuple[str, ...]
    parameters: Mapping[str, Any]
    metrics: Mapping[str, Any]
    window_start: datetime
    window_end: datetime
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_model(self, created_at: datetime, created_by: str) -> PredictionModel:
        return PredictionModel(
            version=0,
            created_at=created_at,
            created_by=created_by,
            window_start=self.window_start,
            window_end=self.window_end,
            features=self.features,
            parameters=self.parameters,
            metrics=self.metrics,
            sha256=PredictionModel.digest(self.features, self.parameters, self.metrics),
        )


def _examples(
    requests: Iterable[ApprovalRequest],
) -> tuple[list[tuple[ApprovalRequest, dict[str, float], set[str]]], float]:
    """Every labelled request with its features, in time order; and the escalation prior.

    The recent rates walk all requests (labelled or not) in order, so each example sees only
    what had happened before it, as serving does.
    """
    ordered = sorted((r for r in requests if not r.canary), key=lambda r: (r.created_at, r.id))
    prior = Rate(sum(1 for r in ordered if r.lane is Lane.ESCALATE), len(ordered)).value or 0.0
    rates = RecentRates()
    found = []
    for request in ordered:
        inp = request.routing_input()
        if has_ground_truth(request):
            numeric, tokens = raw_features(inp, request.created_at, rates, prior)
            found.append((request, numeric, tokens))
        rates.observe(inp, request.lane is Lane.ESCALATE)
    return found, prior


def check_history(
    labelled: Sequence[ApprovalRequest],
    *,
    min_labelled: int = MIN_LABELLED,
    min_span: timedelta = MIN_SPAN,
) -> None:
    """Raise NotEnoughHistory saying what is missing, unless the history is enough."""
    span = labelled[-1].created_at - labelled[0].created_at if labelled else timedelta(0)
    missing = []
    if len(labelled) < min_labelled:
        missing.append(f"{min_labelled - len(labelled)} more labelled items")
    if span < min_span:
        missing.append(f"{(min_span - span).days + 1} more days of history")
    if missing:
        raise NotEnoughHistory(
            f"{len(labelled)} labelled items over {span.days} days; a model needs at least "
            f"{min_labelled} over {min_span.days} days (missing: {' and '.join(missing)}). "
            "Labels come from people's verdicts and the outcomes agents report."
        )


def train(
    requests: Iterable[ApprovalRequest],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_labelled: int = MIN_LABELLED,
    min_span: timedelta = MIN_SPAN,
) -> Trained:
    """Fit on the older 80% of the labelled history, evaluate on the newest 20%.

    Raises PredictUnavailable without scikit-learn, NotEnoughHistory below the minimum
    history or when the training part holds a single label.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise PredictUnavailable("install signoff[predict] (scikit-learn) to train") from exc
    examples, prior = _examples(requests)
    check_history([r for r, _, _ in examples], min_labelled=min_labelled, min_span=min_span)
    labels = [needed_a_human(r) for r, _, _ in examples]
    split = int(len(examples) * 0.8)
    fit, held = examples[:split], examples[split:]
    fit_labels, held_labels = labels[:split], labels[split:]
    if len(set(fit_labels)) < 2:
        raise NotEnoughHistory(
            "every labelled item in the training part has the same label: nothing to learn"
        )
    counts: dict[str, int] = {}
    label_values: dict[str, int] = {}
    for _, _, tokens in fit:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    for token in counts:
        if token.startswith("label:"):
            key = token.split("=", 1)[0]
            label_values[key] = label_values.get(key, 0) + 1
    vocabulary = sorted(
        t
        for t, n in counts.items()
        if n >= VOCAB_MIN and label_values.get(t.split("=", 1)[0], 0) <= MAX_LABEL_VALUES
    )
    features = (*NUMERIC, *vocabulary)
    matrix = [_vector(numeric, tokens, features) for _, numeric, tokens in fit]
    scaler = StandardScaler().fit(matrix)
    scale = [float(s) if s > 0 else 1.0 for s in scaler.scale_]
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(scaler.transform(matrix), fit_labels)
    parameters: dict[str, Any] = {
        "kind": MODEL_KIND,
        "mean": [float(m) for m in scaler.mean_],
        "scale": scale,
        "coef": [float(c) for c in model.coef_[0]],
        "intercept": float(model.intercept_[0]),
        "rate_prior": prior,
        "rate_window": RATE_WINDOW,
    }
    scorer = ModelScorer(features, parameters)
    held_scores = [scorer.score_vector(_vector(n, t, features)) for _, n, t in held]
    fit_scores = [scorer.score_vector(x) for x in matrix]
    evaluation = quality(held_scores, held_labels, threshold)
    metrics: dict[str, Any] = {
        "evaluation": evaluation,
        "training": {
            "count": len(fit),
            "positives": sum(fit_labels),
            "auc": roc_auc(fit_scores, fit_labels),
        },
        "evaluation_window": {
            "from": held[0][0].created_at.isoformat(),
            "to": held[-1][0].created_at.isoformat(),
        },
        "threshold": threshold,
    }
    warnings = []
    auc = evaluation["auc"]
    if auc is None:
        warnings.append(
            "the evaluation window holds a single label, so the model's skill is unknown"
        )
    elif auc < NO_SKILL_AUC:
        warnings.append(
            f"no skill: ROC AUC {auc:.2f} on the newest 20% (below {NO_SKILL_AUC}); the "
            "history does not predict who needs a person, so do not activate this model"
        )
    metrics["warnings"] = warnings
    return Trained(
        features=features,
        parameters=parameters,
        metrics=metrics,
        window_start=examples[0][0].created_at,
        window_end=examples[-1][0].created_at,
        warnings=tuple(warnings),
    )
