"""Storage of the centre: one interface (base.Storage), two backends (SQLite, TimescaleDB).

``open_storage(url)`` picks the backend from the URL:

* ``sqlite://PATH``: an SQLite file; ``sqlite:///var/lib/pak/pak.db`` is the absolute path
  ``/var/lib/pak/pak.db``, ``sqlite://pak.db`` a path relative to the working directory,
  ``sqlite://:memory:`` a private in-memory database (tests);
* ``postgresql://...`` (or ``postgres://...``): PostgreSQL with the timescaledb extension.

Opening does not migrate: services call ``storage.migrate()`` at start-up (idempotent), and
``pak db migrate`` does the same by hand. The backend modules are imported on demand, so an
SQLite-only box never loads psycopg.
"""

from __future__ import annotations

from typing import Any

from pak.errors import ConfigError
from tracker.storage.base import (
    Alert,
    DeadLetter,
    NotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    dedupe,
)
from tracker.storage.records import (
    ALERT_STATUSES,
    WATCH_STATUSES,
    AlertStatusChange,
    AuditEntry,
    GatewayRecord,
    Reader,
    StoredAlert,
    TagAssignment,
    Vehicle,
    WatchEntry,
)

__all__ = [
    "ALERT_STATUSES",
    "WATCH_STATUSES",
    "Alert",
    "AlertStatusChange",
    "AuditEntry",
    "DeadLetter",
    "GatewayRecord",
    "NotFound",
    "Reader",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "StoredAlert",
    "TagAssignment",
    "Vehicle",
    "WatchEntry",
    "backend_of",
    "dedupe",
    "open_storage",
]


def backend_of(url: str) -> str:
    """``"sqlite"`` or ``"postgres"`` for a storage URL; ConfigError for anything else."""
    if url.startswith("sqlite://"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgres"
    raise ConfigError(f"--db: expected sqlite://PATH or postgresql://..., got {url!r}")


def open_storage(url: str, **opts: Any) -> Storage:
    """Open the storage a URL names. ``opts`` go to the backend: for SQLite ``busy_timeout``
    (seconds); for PostgreSQL ``min_size``, ``max_size`` (pool), ``timeout`` (seconds to wait
    for a connection before StorageUnavailable), ``connect_timeout``, ``application_name``."""
    if backend_of(url) == "sqlite":
        from tracker.storage.sqlite import SqliteStorage

        path = url[len("sqlite://"):]
        if not path:
            raise ConfigError(f"--db: {url!r} names no file (sqlite:///abs/path.db)")
        return SqliteStorage(url, path, **opts)
    from tracker.storage.timescale import TimescaleStorage

    return TimescaleStorage(url, **opts)
