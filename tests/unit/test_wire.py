"""The wire shapes: each builder's output is exactly what its OpenAPI model declares."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from bot.core.domain import Action, ApprovalRequest, Status, Verdict, Vote
from bot.core.learning import StandingUse
from bot.core.wording import Wording
from bot.engine.wire import (
    RequestOut,
    SubmitOut,
    WebhookData,
    WebhookOut,
    request_json,
    submit_response,
    webhook_body,
)
from routing import default_policy
from tests.unit.test_wording import payment, request_from

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def submitted() -> ApprovalRequest:
    return request_from(payment(), Wording(default_policy()), question="Which account?")


def decided() -> ApprovalRequest:
    request = submitted()
    edited = Action("payment", "Pay INV-1", {"invoice": "INV-1", "amount": 900})
    vote = Vote(
        "web:ana", "Ana", Verdict.RESPOND, "ok", NOW, "web", edited.sha256, "web:ana", "ops"
    )
    return dataclasses.replace(
        request,
        status=Status.MODIFIED,
        modified_action=edited,
        votes=(vote,),
        decided_at=NOW,
    )


def test_every_builder_emits_exactly_its_models_fields() -> None:
    request = decided()
    body = request_json(request)
    assert set(body) == set(RequestOut.model_fields)
    RequestOut.model_validate(body)

    answer = submit_response(submitted())
    assert set(answer) == set(SubmitOut.model_fields) - {"standing_approval"}
    SubmitOut.model_validate(answer)
    approved = submit_response(submitted(), StandingUse("sa_1", NOW))
    assert approved["standing_approval"] == "sa_1"

    hook = webhook_body(request, "request.resolved", NOW)
    assert set(hook["data"]) == set(WebhookData.model_fields)
    parsed = WebhookOut.model_validate(hook)
    assert parsed.data.response == "ops"
    assert parsed.data.reasons_text == ["Large payment"]
    assert [(c.path, c.old, c.new) for c in parsed.data.changes] == [
        ("invoice", None, "INV-1"),
        ("amount", None, 900),
    ]
