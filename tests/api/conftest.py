"""An empty, migrated SQLite storage for the API's access tests (test_api.py fills its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tracker.storage import open_storage
from tracker.storage.base import Storage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(f"sqlite:///{tmp_path / 'api.sqlite3'}") as st:
        st.migrate()
        yield st


@pytest.fixture
def app(storage: Storage) -> FastAPI:
    """The app over that storage (no broker)."""
    return create_app(ApiSettings(db="sqlite:///unused"), storage=storage)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app`` with its lifespan running."""
    with TestClient(app) as c:
        yield c
