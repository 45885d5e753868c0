"""An empty, migrated SQLite storage for the API's access tests (test_api.py fills its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.storage import open_storage
from tracker.storage.base import Storage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(f"sqlite:///{tmp_path / 'api.sqlite3'}") as st:
        st.migrate()
        yield st
