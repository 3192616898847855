"""The first thing a new user runs, `make run`, on the base install: no extras at all.

The rest of the suite runs with the test extras (PostgreSQL driver, LangGraph, boto3...),
so an import of an optional package on the base server's path would pass everywhere but
here. This builds a separate virtual environment with `pip install .` alone and walks the
README's first steps against it: serve with no config, submit with the printed key, open
the printed sign-in link.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve import serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
# What `pip install .` reads: the packages of [tool.setuptools.packages.find] and the files
# pyproject.toml names. Copied, so the build leaves nothing behind in the working tree.
SOURCES = ("pyproject.toml", "README.md", "bot", "adapters", "routing", "storage", "client")


@pytest.fixture(scope="module")
def bare_signoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `signoff` script of a fresh virtual environment holding the base install only."""
    work = tmp_path_factory.mktemp("bare")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(origin, source / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's own cache (wheels of the dependencies) keeps this to seconds after the first run.
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    bare = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print(u.find_spec('psycopg'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert bare.stdout.strip() == "None", "the base install must not bring the PostgreSQL driver"
    return venv / "bin" / "signoff"


def test_the_base_install_serves_the_embedded_default(bare_signoff: Path, tmp_path: Path) -> None:
    with serve(tmp_path, signoff=str(bare_signoff)) as server:
        key = server.api_key
        link = server.line_matching(r"login: (http://\S+)").group(1)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client:
            created = client.post(
                "/v1/requests",
                json={
                    "action": {"kind": "payment", "summary": "Pay INV-123", "payload": {}},
                    "confidence": 0.62,
                    "amount": 5000,
                },
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "pending"
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200 and "Sign in as admin" in page.text
