"""Throw-away databases for the storage tests: SQLite files and PostgreSQL schemas."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.sql import create_engine

POSTGRES_URL = os.environ.get("SIGNOFF_TEST_POSTGRES_URL")
NO_POSTGRES = "SIGNOFF_TEST_POSTGRES_URL is not set"


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A URL whose connections live in a new, empty schema, dropped afterwards.

    A schema per test (instead of one shared database) lets the suite run repeatedly and
    next to other test modules that reset `public`.
    """
    assert POSTGRES_URL is not None, NO_POSTGRES
    schema = f"signoff_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await admin.dispose()
