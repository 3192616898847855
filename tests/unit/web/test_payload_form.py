"""The payload form: one input per leaf, read back with each leaf's type kept."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.web import _payload
from bot.core.domain import Action

PAYLOAD: dict[str, Any] = {
    "invoice": "INV-123",
    "amount": 950,
    "rate": 0.5,
    "urgent": True,
    "note": None,
    "vendor": {"name": "ACME", "tags": ["gold", "eu"], "extra": {}},
}


def posted(**changes: str) -> dict[str, str]:
    """The form a browser posts for PAYLOAD, with `changes` to some inputs."""
    form = {
        "pf_0": "INV-123",
        "pf_1": "950",
        "pf_2": "0.5",
        "pf_3": "1",
        "pf_4": "",
        "pf_5": "ACME",
        "pf_6": "gold",
        "pf_7": "eu",
    }
    form.update(changes)
    return form


def test_every_leaf_gets_a_numbered_input_with_a_label_and_a_kind() -> None:
    found = _payload.leaves(PAYLOAD)
    assert [(leaf.name, leaf.label, leaf.kind) for leaf in found] == [
        ("pf_0", "Invoice", "text"),
        ("pf_1", "Amount", "integer"),
        ("pf_2", "Rate", "number"),
        ("pf_3", "Urgent", "boolean"),
        ("pf_4", "Note", "null"),
        ("pf_5", "Vendor / Name", "text"),
        ("pf_6", "Vendor / Tags / 1", "text"),
        ("pf_7", "Vendor / Tags / 2", "text"),
        ("pf_8", "Vendor / Extra", "empty"),
    ]
    assert _payload.leaves({}) == []
    assert _payload.editable({str(i): i for i in range(_payload.MAX_FORM_LEAVES + 1)}) is None


def test_the_form_reads_back_with_types_kept() -> None:
    edited = _payload.read_form(PAYLOAD, posted(pf_1="900", pf_3="", pf_6="silver"))
    assert edited == {
        **PAYLOAD,
        "amount": 900,
        "urgent": True,
        "vendor": {"name": "ACME", "tags": ["silver", "eu"], "extra": {}},
    }
    # An unticked checkbox is absent from the post: false.
    unticked = {k: v for k, v in posted().items() if k != "pf_3"}
    assert _payload.read_form(PAYLOAD, unticked)["urgent"] is False
    # An integer may become a decimal; a decimal that is whole stays what it was typed as.
    assert _payload.read_form(PAYLOAD, posted(pf_1="899.5"))["amount"] == 899.5
    assert _payload.read_form(PAYLOAD, posted(pf_2="2"))["rate"] == 2.0
    assert isinstance(_payload.read_form(PAYLOAD, posted(pf_2="2"))["rate"], float)
    # null stays null when left empty, and becomes text when filled in.
    assert _payload.read_form(PAYLOAD, posted(pf_4="later"))["note"] == "later"
    # The payload given is never changed in place.
    assert PAYLOAD["vendor"]["tags"] == ["gold", "eu"]


@pytest.mark.parametrize("text", ["", "nine", "1e999", "nan"])
def test_a_number_that_is_not_one_is_named(text: str) -> None:
    with pytest.raises(_payload.FieldErrors) as caught:
        _payload.read_form(PAYLOAD, posted(pf_1=text))
    assert list(caught.value.errors) == ["pf_1"]
    assert caught.value.errors["pf_1"].startswith("Amount must be a number")


def test_a_missing_input_is_named() -> None:
    form = {k: v for k, v in posted().items() if k != "pf_5"}
    with pytest.raises(_payload.FieldErrors) as caught:
        _payload.read_form(PAYLOAD, form)
    assert caught.value.errors == {"pf_5": "Vendor / Name is missing from the form."}


def test_a_form_for_another_payload_or_with_no_change_is_refused() -> None:
    action = Action("payment", "Pay INV-123", PAYLOAD)
    good = {**posted(pf_1="900"), _payload.SHA_FIELD: action.sha256}
    assert _payload.read_posted(action, good)["amount"] == 900
    stale = {**good, _payload.SHA_FIELD: "0" * 64}
    with pytest.raises(_payload.FieldErrors, match="payload changed while you edited it"):
        _payload.read_posted(action, stale)
    same = {**posted(), _payload.SHA_FIELD: action.sha256}
    with pytest.raises(_payload.FieldErrors, match="Nothing was changed"):
        _payload.read_posted(action, same)
