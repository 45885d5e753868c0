"""Batches of received messages, written to storage in one transaction each, retried until they
commit, and only then handed on (for acks and receipts).

One writer thread takes the oldest pending messages as a batch when their sightings reach
``batch_size`` or the oldest has waited ``max_age`` seconds, whichever comes first; meanwhile the
receiving thread keeps filling the next batch, so parsing overlaps the database's work. While
the writer is behind, the next batch simply grows (up to ``batch_size`` per write), bounded by
the broker's in-flight window (MQTT 5 Receive Maximum): nothing is acked until committed, so
the broker stops sending once that many messages wait here.

Exactly once: a batch is deduplicated before it is written (the database merges on the sighting
id for everything across batches), and a batch that could not be committed is retried whole,
never acked in part. The database being down is expected (:class:`StorageUnavailable`): the same
batch is retried with exponential backoff and one log line when the database goes away, one
when it is back. Any other error is the batch's own fault: it is split in halves until the
message that the database refuses is found, and that message becomes a dead letter (reason
``storage_rejected``), so one bad message never blocks the good ones around it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.metrics import IngestMetrics
from ingest.ports import BatchSink, DeadLetter, StorageUnavailable, dedupe
from ingest.validate import GatewayStatus
from pak.alert import Alert
from pak.logs import event
from pak.types import Sighting

__all__ = ["Batch", "Batcher", "Item"]

log = logging.getLogger("pak.ingest.batcher")


@dataclass(slots=True)
class Item:
    """One received message on its way to storage, with what it contributes to a batch.

    ``ack`` is opaque here: the pipeline's token for acknowledging the message after commit
    (None for a message that needs none, e.g. QoS 0)."""

    topic: str
    payload: bytes
    received_at: datetime
    ack: Any = None
    sightings: Sequence[Sighting] = ()
    alerts: Sequence[Alert] = ()
    dead_letter: DeadLetter | None = None
    gateway: GatewayStatus | None = None
    added: float = field(default=0.0, repr=False)

    @property
    def weight(self) -> int:
        """Rows this message adds to a batch (at least 1: dead letters and records count)."""
        return len(self.sightings) or 1

    def rejected(self, detail: str) -> Item:
        """This message as a dead letter, for when the database refuses what it carries."""
        dl = DeadLetter(topic=self.topic, payload=self.payload, reason="storage_rejected",
                        detail=detail[:500], received_at=self.received_at)
        return dataclasses.replace(self, sightings=(), alerts=(), gateway=None, dead_letter=dl)


@dataclass(slots=True)
class Batch:
    """What one transaction writes: sightings deduplicated, alerts one per id and cause (each
    hit on one alert joins its sightings), the last state and the last health per gateway."""

    items: list[Item]
    sightings: list[Sighting]
    dead_letters: list[DeadLetter]
    alerts: list[Alert]
    gateways: list[GatewayStatus]
    received: int

    @classmethod
    def of(cls, items: list[Item]) -> Batch:
        sightings: list[Sighting] = []
        dead: list[DeadLetter] = []
        alerts: dict[tuple[str, object], Alert] = {}
        gateways: dict[tuple[str, bool], GatewayStatus] = {}
        for it in items:
            if it.sightings:
                sightings.extend(it.sightings)
            if it.alerts:
                for a in it.alerts:
                    alerts[(a.alert_id, a.sighting)] = a
            if it.dead_letter is not None:
                dead.append(it.dead_letter)
            if it.gateway is not None:
                gateways[(it.gateway.gateway_id, it.gateway.state is None)] = it.gateway
        return cls(items, _unique(sightings), dead, list(alerts.values()),
                   list(gateways.values()), len(sightings))


def _unique(sightings: list[Sighting]) -> list[Sighting]:
    """:func:`ingest.ports.dedupe`, with a fast path for the usual batch that holds
    each sighting id once (a set of key tuples instead of SightingId objects)."""
    keys = {(s.gateway_id, s.spool_id, s.seq) for s in sightings}
    return sightings if len(keys) == len(sightings) else dedupe(sightings)


class _Abandoned(Exception):
    """Shutdown gave up on a batch while the database was unavailable (nothing is acked)."""


class Batcher:
    """Collects :class:`Item` objects (any thread) and commits them in batches (own thread).

    ``on_committed(batch)`` runs in the writer thread after each commit, in commit order; the
    items of a batch are in the order they were added, so acks can keep the broker's order.
    """

    def __init__(
        self,
        storage: BatchSink,
        *,
        on_committed: Callable[[Batch], None],
        batch_size: int = 5000,
        max_age: float = 0.25,
        metrics: IngestMetrics | None = None,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_age <= 0:
            raise ValueError("batch_size must be >= 1 and max_age > 0")
        self._storage = storage
        self._on_committed = on_committed
        self._size = batch_size
        self._max_age = max_age
        self._metrics = metrics or IngestMetrics()
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._items: deque[Item] = deque()
        self._weight = 0  # sum of the pending items' weights
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._abandon = threading.Event()
        self._db_down_since: float | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0  # items taken by the writer and not yet handed on

    # --- the receiving side -----------------------------------------------------------------

    def add(self, item: Item) -> None:
        """Queue one message for the next batch (cheap: called for every message)."""
        item.added = time.monotonic()
        w = item.weight
        with self._cond:
            was_empty = not self._items
            self._items.append(item)
            before = self._weight
            self._weight = before + w
            # Wake the writer only when it has something new to decide: the first item starts
            # the age clock; crossing batch_size fills a batch.
            if was_empty or (before < self._size <= self._weight):
                self._cond.notify()
        self._metrics.pending.inc()

    @property
    def pending(self) -> int:
        """Messages held (queued or being written), i.e. not yet handed on as committed."""
        with self._cond:
            return len(self._items) + self._in_flight

    @property
    def db_available(self) -> bool:
        return self._db_down_since is None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("batcher already started")
        self._thread = threading.Thread(target=self._run, name="pak-ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Commit everything pending, then end the writer. Returns True when all was committed;
        False when the database stayed unavailable for ``timeout`` seconds (what is left is not
        acked, so the broker redelivers it to the next session)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is None:
            return not self._items
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            self._thread.join(5.0)
        with self._cond:
            return not self._items and self._in_flight == 0

    # --- the writer ---------------------------------------------------------------------------

    def _take(self) -> list[Item] | None:
        """Block until a batch is due; return its items (None: stopped and nothing left)."""
        with self._cond:
            while True:
                if self._items:
                    if self._stopping or self._weight >= self._size:
                        break
                    wait = self._items[0].added + self._max_age - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                elif self._stopping:
                    return None
                else:
                    self._cond.wait()
            items: list[Item] = []
            taken = 0
            while self._items and taken < self._size:
                it = self._items.popleft()
                items.append(it)
                taken += it.weight
            self._weight -= taken
            self._in_flight = len(items)
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            try:
                batch = self._commit(items)
            except _Abandoned:
                event(log, logging.WARNING, "batch_abandoned", messages=len(items),
                      why="database unavailable at shutdown; the broker redelivers them")
                return
            try:
                self._on_committed(batch)
            except Exception:
                # Acks and receipts failing must not stop ingest: unacked messages come back.
                log.exception("after-commit step failed")
            with self._cond:
                self._in_flight = 0
            self._metrics.pending.dec(len(batch.items))

    def _write(self, batch: Batch) -> None:
        for g in batch.gateways:
            self._storage.record_gateway(g.gateway_id, state=g.state, health=g.health, at=g.at)
        self._storage.write_batch(batch.sightings, dead_letters=batch.dead_letters,
                                  alerts=batch.alerts)

    def _commit(self, items: list[Item]) -> Batch:
        batch = Batch.of(items)
        t0 = time.perf_counter()
        try:
            self._retrying(batch, refused_is_final=True)
        except _Abandoned:
            raise
        except Exception as e:
            event(log, logging.ERROR, "batch_refused", messages=len(items), error=repr(e)[:300],
                  action="isolating the refused message")
            batch = Batch.of(self._isolate(items))
        m = self._metrics
        m.commit_seconds.observe(time.perf_counter() - t0)
        m.batch_size.observe(len(batch.sightings))
        m.stored.inc(len(batch.sightings))
        return batch

    def _isolate(self, items: list[Item]) -> list[Item]:
        """Write ``items`` in halves until each refused message is alone; those become dead
        letters. Returns the items as committed."""
        try:
            self._retrying(Batch.of(items), refused_is_final=True)
            return items
        except _Abandoned:
            raise
        except Exception as e:
            if len(items) > 1:
                mid = len(items) // 2
                return self._isolate(items[:mid]) + self._isolate(items[mid:])
            dead = items[0].rejected(repr(e))
            # Storing a dead letter must work; if it does not, keep trying rather than lose it.
            self._retrying(Batch.of([dead]), refused_is_final=False)
            self._metrics.dead_letters.labels("storage_rejected").inc()
            event(log, logging.WARNING, "dead_letter", reason="storage_rejected",
                  topic=dead.topic, detail=repr(e)[:300])
            return [dead]

    def _retrying(self, batch: Batch, *, refused_is_final: bool) -> None:
        """Write ``batch``, retrying while the database is unavailable. Raises what the database
        refuses when ``refused_is_final``, and _Abandoned when shutdown gives up."""
        delay = self._retry_initial
        while True:
            try:
                self._write(batch)
            except StorageUnavailable as e:
                self._went_down(e)
            except Exception as e:
                if refused_is_final:
                    raise
                self._went_down(e)
            else:
                self._came_back()
                return
            self._metrics.db_retries.inc()
            if self._abandon.wait(delay):
                raise _Abandoned
            delay = min(delay * 2, self._retry_max)

    def _went_down(self, error: Exception) -> None:
        if self._db_down_since is None:
            self._db_down_since = time.monotonic()
            event(log, logging.WARNING, "db_unavailable", error=str(error)[:300],
                  action="holding the batch and retrying; nothing is acked meanwhile")

    def _came_back(self) -> None:
        if self._db_down_since is not None:
            down = time.monotonic() - self._db_down_since
            self._db_down_since = None
            event(log, logging.INFO, "db_available", down_s=round(down, 3))
