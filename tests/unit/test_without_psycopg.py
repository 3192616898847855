"""The base install has no PostgreSQL driver: SQLite must work without it, and a PostgreSQL
URL must say what to install instead of failing with an import error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter where `import psycopg` fails as it does without the extra.
PRELUDE = "import sys; sys.modules['psycopg'] = None\n"


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])},
    )


def test_sqlite_serves_without_the_driver(tmp_path: Path) -> None:
    result = python(
        "import asyncio\n"
        "import bot.server.app, bot.server.cli, storage\n"
        "from bot.server.config import load_config\n"
        "async def main():\n"
        "    services = await bot.server.app.build_services(load_config(None, {}))\n"
        "    async with services.stack:\n"
        "        print(type(services.notifier).__name__)\n"
        "asyncio.run(main())\n",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "InMemoryNotifier"
    assert (tmp_path / "signoff.db").exists()


def test_a_postgresql_url_without_the_driver_exits_2_naming_the_extra(tmp_path: Path) -> None:
    result = python(
        "import os\n"
        "os.environ['SIGNOFF_DATABASE_URL'] = 'postgresql://signoff@127.0.0.1:1/signoff'\n"
        "from bot.server.cli import main\n"
        "sys.exit(main(['db', 'upgrade']))\n",
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "install signoff[postgres]" in result.stderr
    assert "Traceback" not in result.stderr
