"""Alembic environment for Signoff.

`storage.migrate` hands over an open connection in `config.attributes["connection"]`; run
from the alembic CLI instead (`alembic -c storage/alembic.ini upgrade head`), the database
comes from `-x url=...`, then `SIGNOFF_DATABASE_URL`, then the embedded default.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from storage.models import Base
from storage.sql import async_url, create_engine

DEFAULT_URL = "sqlite:///./signoff.db"


def _url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "SIGNOFF_DATABASE_URL", DEFAULT_URL
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_new_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=async_url(_url()).render_as_string(hide_password=False),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (given := context.config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_on_new_engine(_url()))
