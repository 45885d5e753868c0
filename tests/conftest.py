"""Shared fixtures: real services (see tests/services.py) and hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests import services
from tests.support.memstore import MemoryStorage
from tests.support.stores import Store

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if services.IN_CI else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def mqtt_url() -> str:
    """The shared Mosquitto (tests use their own topic roots on it)."""
    return services.require_shared_mosquitto()


@pytest.fixture
def topic_root() -> str:
    return services.unique("pak-test/") + "/v1"


@pytest.fixture
def private_broker() -> Iterator[services.PrivateMosquitto]:
    with services.private_mosquitto() as m:
        yield m


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL, timescaledb available, dropped afterwards."""
    with services.scratch_database() as url:
        yield url


@pytest.fixture
def private_pg() -> Iterator[services.PrivatePostgres]:
    with services.private_postgres() as pg:
        yield pg


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
