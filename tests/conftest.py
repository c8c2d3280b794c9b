"""Fixtures shared by the whole suite: databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("FAXLINE_TEST_DATABASE_URL")

# In CI the property tests run on a fixed seed: a red build must be reproducible there.
# Locally they explore new examples on every run (and remember the failures they find).
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def reset_postgres(url: str) -> None:
    """Drop everything in the public schema, so each test starts from an empty database."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, or PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'faxline.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set FAXLINE_TEST_DATABASE_URL to run this on it")
    reset_postgres(PG_URL)
    yield PG_URL
