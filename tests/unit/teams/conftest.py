"""The Adaptive Card schema validator every Teams card test checks its cards with."""

from __future__ import annotations

import jsonschema
import pytest

from tests.unit.teams import schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft6Validator:
    return schema.validator()
