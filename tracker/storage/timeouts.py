"""Statement timeouts, per kind of query: no query waits on the database for ever.

A database that hangs (a lock, a failover, a disk stall) must cost each caller a bounded,
known time, shortest where a thread is waiting for an answer to go on:

=========  ======================================================  ==========
kind       what                                                    default
=========  ======================================================  ==========
lookup     one-row reads an alert needs (vehicle, passes, alert)   0.2 s
read       the API's queries, the engine's periodic reads          5 s
write      a batch, an alert, a status change (the connection's    30 s
           default: every statement not named otherwise)
long       retention, exports (``iter_sightings``)                 1 h
=========  ======================================================  ==========

PostgreSQL enforces them (``statement_timeout``: the connection's default is ``write``, the
others are ``SET LOCAL`` in their transaction); SQLite has no statement timeout, only its busy
timeout (how long a statement waits for another writer's lock), which takes ``write``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["QueryKind", "StatementTimeouts"]

QueryKind = Literal["lookup", "read", "write", "long"]


@dataclass(frozen=True, slots=True)
class StatementTimeouts:
    """Seconds per kind of query (module doc); 0 means no limit."""

    lookup_s: float = 0.2
    read_s: float = 5.0
    write_s: float = 30.0
    long_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("lookup_s", "read_s", "write_s", "long_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"statement timeout {name} must be >= 0")

    def ms(self, kind: QueryKind) -> int:
        """The timeout of ``kind`` in whole milliseconds, as PostgreSQL takes it."""
        return round(getattr(self, f"{kind}_s") * 1000)
