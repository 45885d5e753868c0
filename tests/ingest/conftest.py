"""Fixtures of the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.memstore import MemoryStorage
from tests.ingest.stores import Store


@pytest.fixture(params=["memory", "sqlite",
                        pytest.param("timescale", marks=pytest.mark.timescale)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        mem = MemoryStorage()
        yield Store(mem.as_storage(), mem)
        return
    from tracker.storage import open_storage

    url = (f"sqlite://{tmp_path}/pak.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    storage = open_storage(url)
    storage.migrate()
    try:
        yield Store(storage)
    finally:
        storage.close()
