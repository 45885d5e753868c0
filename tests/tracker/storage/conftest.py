"""Fixtures of the storage tests: each test runs against both database backends (SQLite in a
temporary folder, TimescaleDB in a scratch database of the shared PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.storage import Storage, open_storage


@pytest.fixture(params=["sqlite", pytest.param("timescale", marks=pytest.mark.timescale)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/pak.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def storage(db_url: str) -> Iterator[Storage]:
    with open_storage(db_url) as s:
        s.migrate()
        yield s
