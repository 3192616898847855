"""The embedded default's demo key: kept owner-only beside the database, one per database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.server.demo_key import demo_key_path, kept_demo_key, read_demo_key, write_demo_key


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./signoff.db", "signoff.demo-key"),
        ("sqlite:////var/lib/signoff/prod.db", "/var/lib/signoff/prod.demo-key"),
        ("sqlite+aiosqlite:///data/s.db?mode=rwc", "data/s.demo-key"),
        ("sqlite:///:memory:", "signoff.demo-key"),
        ("postgresql+psycopg://signoff@db/signoff", "signoff.demo-key"),
    ],
)
def test_the_key_sits_beside_the_sqlite_database(url: str, path: str) -> None:
    assert demo_key_path(url) == Path(path)


def test_a_key_is_made_once_owner_only_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "signoff.demo-key"
    key = kept_demo_key(path)
    assert key.startswith("sk_") and path.stat().st_mode & 0o777 == 0o600
    assert kept_demo_key(path) == key
    write_demo_key(path, "sk_" + "r" * 43)
    assert kept_demo_key(path) == "sk_" + "r" * 43
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["signoff.demo-key"]  # no temporary left


def test_a_readable_file_is_made_owner_only_and_junk_is_no_key(tmp_path: Path) -> None:
    path = tmp_path / "signoff.demo-key"
    path.write_text("sk_" + "a" * 43 + "\n")
    path.chmod(0o644)
    assert read_demo_key(path) == "sk_" + "a" * 43
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("not a key\n")
    assert read_demo_key(path) is None
    with pytest.raises(OSError, match="holds no usable key"):
        kept_demo_key(path)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signoff.demo-key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: kept_demo_key(path), range(16)))
    assert keys == {read_demo_key(path)}
