"""The embedded default's demo agent key, kept in a file so it survives restarts.

The file sits beside the SQLite database (`signoff.db` -> `signoff.demo-key`; for a
PostgreSQL URL, in the working directory), readable by its owner only (0600). The database
keeps only the key's sha256, as for every key; the file is what lets `signoff serve`
print the same key at every start, and `signoff keys new demo` replaces both.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path

__all__ = [
    "demo_key_path",
    "kept_demo_key",
    "key_digest",
    "new_api_key",
    "read_demo_key",
    "write_demo_key",
]

_KEY = re.compile(r"sk_[A-Za-z0-9_-]{20,200}")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh API key and the sha256 hex the config (or database) keeps instead of it."""
    key = "sk_" + secrets.token_urlsafe(32)
    return key, key_digest(key)


def demo_key_path(database_url: str) -> Path:
    """Where the demo key that goes with the database at `database_url` is kept."""
    scheme, _, rest = database_url.partition(":///")
    if scheme.startswith("sqlite") and rest:
        database = rest.split("?", 1)[0]
        if database and database != ":memory:":
            return Path(database).with_suffix(".demo-key")
    return Path("signoff.demo-key")


def read_demo_key(path: Path) -> str | None:
    """The key kept at `path`, or None when there is none (or the file holds no key).

    A file others may read is made owner-only again: it holds a working credential.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return text if _KEY.fullmatch(text) else None


def write_demo_key(path: Path, key: str) -> None:
    """Replace the kept key; the file is created 0600 and swapped in whole (no half key)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def kept_demo_key(path: Path) -> str:
    """The kept key, made and kept first if there is none.

    Replicas started together in one directory agree on one key: the file is created
    exclusively, and a process that loses that race reads the winner's key.
    """
    for _ in range(50):
        key = read_demo_key(path)
        if key is not None:
            return key
        key, _ = new_api_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.02)  # another process is writing it; read it next round
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        return key
    raise OSError(f"{path} holds no usable key; remove it to have a new one made")
