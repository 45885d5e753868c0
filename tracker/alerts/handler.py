"""The one interface every alert handler implements, and what the engine asks of it.

A handler owns one kind of alert (or a family of kinds decided from the same evidence) and all
of its state. The engine (tracker/alerts/engine.py) knows nothing of any kind: it hands every
valid sightings message to each handler's :meth:`AlertHandler.on_sightings` (the MQTT receive
thread, before the message is batched) and runs the handlers' :class:`Job` objects on its
timer thread. A new alert kind is a new handler, added to the handler list in engine.py.

Rules for handlers:

* ``on_sightings`` must be quick (dict lookups, counting in memory): every message of the city
  passes through it. Only the stolen handler may touch storage there, and only on a hit; the
  alerts it returns are stored by the pipeline with the batch of their sighting.
* A job reads storage and raises alerts through the shared :class:`~tracker.alerts.outbox.
  Outbox`; a :class:`~tracker.storage.base.StorageError` it raises is logged once and the job
  is retried on its next period (the handler keeps what it has not decided yet).
* State shared between the two threads is guarded by the handler's own lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pak.alert import Alert
from pak.types import Sighting

if TYPE_CHECKING:
    from tracker.alerts.context import Registry
    from tracker.alerts.outbox import Outbox
    from tracker.alerts.settings import AlertSettings
    from tracker.storage.base import Storage

__all__ = ["AlertHandler", "Handler", "Job"]


class Job(NamedTuple):
    """A periodic piece of a handler's work: its name (in logs), its period, the callable."""

    name: str
    every_s: float
    run: Callable[[], object]


class AlertHandler(Protocol):
    """One alert kind (or family) with its state; see the module doc."""

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        """See one valid sightings message (hot path); return the alerts to store with it."""
        ...

    def jobs(self) -> list[Job]:
        """The periodic checks the engine's timer runs for this handler."""
        ...


class Handler:
    """What most handlers start from: the shared outbox, storage, the registry cache and the
    settings; nothing seen on the hot path and no jobs until a subclass says otherwise."""

    def __init__(self, outbox: Outbox, storage: Storage, registry: Registry,
                 settings: AlertSettings) -> None:
        self._outbox = outbox
        self._storage = storage
        self._registry = registry
        self.s = settings

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        return []

    def jobs(self) -> list[Job]:
        return []
