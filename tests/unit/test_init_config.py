"""`signoff init`'s file is the embedded default, spelled out: every section, same values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.server.config import Settings, load_config, parse_config
from bot.server.init_config import TEMPLATE, write_config


def test_the_template_loads_to_exactly_the_built_in_default() -> None:
    written = parse_config(yaml.safe_load(TEMPLATE), {}).settings
    assert written.model_dump() == parse_config({}, {}).settings.model_dump()


def test_the_template_names_every_section() -> None:
    # A section added to the config must be added (at its default) to the template too.
    assert list(yaml.safe_load(TEMPLATE)) == list(Settings.model_fields)


def test_writing_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "signoff.yaml"
    write_config(path)
    assert load_config(path, {}).source == str(path)
    path.write_text("agents: []\n")
    with pytest.raises(FileExistsError):
        write_config(path)
    assert path.read_text() == "agents: []\n"
