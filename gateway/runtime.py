"""The gateway at run time: link thread -> smoother -> core thread (spool) -> MQTT.

Threads and who owns what::

    link thread      SerialLink / StationServer.run: bytes -> driver -> TagReads -> sink():
                     stamps each read and folds it into the smoother (under a lock); only a
                     sighting that opens or closes is handed on (a list + one wake-up token)
    core thread      (the caller of Gateway.run) owns the spool's SQLite connection; its queue
                     brings wake-ups: sightings waiting, window freed, connected. Receipts
                     from paho's thread wait in a list for its next iteration (at least
                     twice a second): deleting is never urgent. It also expires sightings.
    paho thread      network I/O, reconnects, callbacks (publisher.py)
    spool-sync       WAL fsyncs and seq reservations, off the read path (spool.py)
    metrics          prometheus_client's HTTP server; reads the last health snapshot only

Health and metrics live beside the loop: the core builds the health payload
(gateway/health.py) every ``--health-every`` seconds, publishes it and hands the same snapshot
to the Prometheus collector (gateway/metrics.py); neither touches the loop's state otherwise.

One core iteration: take the sightings that opened or closed (and expire silent ones); store
them and commit (a commit costs no disk sync); publish them at once (an ``open`` within
milliseconds of its read: nothing waits to fill a batch); then fill what is left of the
in-flight window with the backlog, oldest first, a few messages per iteration so live
sightings never queue behind a whole backlog. Receipts delete what the centre has stored.
The core wakes for sightings (tens a second), not for every read (hundreds).

The centre's presence (ingest/presence.py): when the centre announces an epoch newer than the
one in the spool (a tracker has just (re)subscribed, so anything published before may have
been dropped by a broker that lost its shared subscriptions), the epoch is saved in the spool
and everything unreceipted is made due after a random 0..``PRESENCE_JITTER_S`` s, so a
thousand gateways do not republish in the same instant. The backlog then drains through the
ordinary pump, inside the publisher's in-flight window. An epoch already in the spool (the
retained message after a restart) is not news.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import random
import threading
import time
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Protocol

from gateway.clock import ClockCheck, ClockStatus
from gateway.config import GatewaySettings, parse_host_port
from gateway.edge_watchlist import EdgeList, send_hits
from gateway.health import health_payload
from gateway.link import ReadSink
from gateway.metrics import GatewayMetrics
from gateway.publisher import Publisher
from gateway.smoother import Smoother
from gateway.spool import Spool, SpoolRow
from pak import __version__
from pak.errors import ConfigError
from pak.key_settings import require_keys
from pak.logs import event
from pak.mqtt import gateway_backoff
from pak.timefmt import utcnow
from pak.types import Sighting, StampedRead, TagRead
from pak.wire import Receipt, Topics, dumps
from pak.wire.presence import Presence

__all__ = ["Gateway", "Link"]

log = logging.getLogger("pak.gateway")

#: Backlog messages published per core iteration before the queue is looked at again.
_PUMP_MESSAGES = 8
#: Open sightings' aggregates are saved to the spool this often (what a crash can lose).
_CHECKPOINT_S = 1.0
_LIMIT_CHECK_S = 1.0
_MAX_READERS = 256
#: The republish a new centre epoch triggers starts after a random wait up to this long.
PRESENCE_JITTER_S = 1.0


class Link(Protocol):
    """What the runtime needs of a link (gateway.link.serial_link / station_server)."""

    def run(self, stop: threading.Event) -> None: ...

    def status(self) -> dict[str, Any]: ...


class Gateway:
    """One gateway process. ``run(stop)`` blocks until ``stop`` is set, then closes every
    open sighting into the spool, says ``offline`` and returns 0."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        link_factory: Callable[[ReadSink], Link] | None = None,
        clock_check: ClockCheck | None = None,
        spool_sync_interval: float = 0.2,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._clock_check = clock_check or ClockCheck()
        self._zone = zoneinfo.ZoneInfo(settings.reader_tz)
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()  # wake-up tokens
        # The link thread folds its reads into the smoother itself (under this lock) and hands
        # the core only what opened or closed: the core wakes for sightings (tens a second),
        # not for every read (hundreds).
        self._lock = threading.Lock()
        self._events: list[Sighting] = []
        self._events_signalled = False
        # paho's thread appends, the core pops: deque operations are atomic, nothing is lost.
        self._receipts: collections.deque[Receipt] = collections.deque()
        self._presence: collections.deque[Presence] = collections.deque()
        self._jitter: Callable[[], float] = lambda: random.uniform(0.0, PRESENCE_JITTER_S)
        self._link_factory = link_factory or self._make_link
        self._topics = Topics(settings.topic_root)
        self._sync_interval = spool_sync_interval
        self._started = time.monotonic()
        self._readers: set[str] = set()
        self._suspect_seqs: set[int] = set()
        self._clock_status = ClockStatus("ok")
        self.counters: dict[str, int] = {
            "reads": 0, "sightings": 0, "hits": 0, "published": 0, "republished": 0, "receipted": 0,
            "receipted_open": 0, "receipts": 0, "dropped": 0, "publish_messages": 0,
            "core_wakeups": 0, "centre_epochs": 0,
        }
        self.metrics = GatewayMetrics()
        self.link: Link | None = None
        self.spool: Spool | None = None
        self.publisher: Publisher | None = None
        self.edge: EdgeList | None = None

    # --- the sink the link calls (link thread) ------------------------------------------

    def sink(self, read: TagRead, reader_id: str, received_at: datetime) -> None:
        """Called by the link thread for every read."""
        stamped = self._stamp(read, reader_id, received_at)
        wake = False
        with self._lock:
            self.counters["reads"] += 1
            if len(self._readers) < _MAX_READERS:
                self._readers.add(reader_id)
            out = self.smoother.feed(stamped)
            if out:
                self._events += out
                wake = not self._events_signalled
                self._events_signalled = True
        if wake:
            self._queue.put("wake")

    def _on_presence(self, p: Presence) -> None:
        """paho's thread: hand the presence to the core and wake it (it owns the spool)."""
        self._presence.append(p)
        self._queue.put("wake")

    def _centre_epochs(self) -> None:
        """Core thread: act on a centre epoch newer than the spool's."""
        assert self.spool is not None
        for _ in range(len(self._presence)):
            p = self._presence.popleft()
            old = self.spool.centre_epoch
            if not self.spool.new_centre_epoch(p.epoch):
                continue
            wait = self._jitter()
            n = self.spool.republish_all(time.monotonic() + wait)
            self.spool.commit()
            self.counters["centre_epochs"] += 1
            event(log, logging.INFO, "centre_epoch_new", epoch=p.epoch, previous=old,
                  issuer=p.issuer, republish=n, jitter_s=round(wait, 3))
            self._queue.put("wake")  # recompute the loop's deadline from the new due time

    def _make_link(self, sink: ReadSink) -> Link:
        from gateway.drivers import make_driver

        s = self.settings

        def factory() -> Any:
            return make_driver(s.driver, s.model)

        if s.serial is not None:
            from gateway.link.serial_link import SerialLink

            reader_id = s.default_reader_id
            assert reader_id is not None
            return SerialLink(s.serial, factory, baud=s.baud_rate, reader_id=reader_id,
                              sink=sink, watchdog_s=s.link_watchdog,
                              ping_every_s=s.link_ping_every, clock=self._clock)
        from gateway.link.station_server import StationServer

        listen = s.listen_address
        assert listen is not None
        return StationServer(listen, factory, sink=sink,
                             advertise=parse_host_port(s.advertise) if s.advertise else None,
                             allow=s.allow_station or None, reader_id=s.reader_id,
                             clock=self._clock)

    # --- run ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        s = self.settings
        event(log, logging.INFO, "gateway_starting", version=__version__, **s.describe())
        # Only control messages the centre's key signed are believed (unsigned: loopback only).
        verifier = s.verifier()
        require_keys("gateway", "centre_key", s.broker(), verifier is not None)
        # The link first: a bad serial URL or a listen port in use is refused before anything
        # else starts.
        self.link = self._link_factory(self.sink)
        metrics = self._start_metrics() if s.metrics_listen else None
        self.spool = spool = Spool(s.spool, max_bytes=s.spool_max_bytes,
                                   republish_after=s.republish_after,
                                   republish_max=s.republish_max,
                                   sync_interval=self._sync_interval)
        event(log, logging.INFO, "spool_open", folder=str(s.spool), spool_id=spool.spool_id,
              depth=spool.depth(), seq_reserved_to=spool.reserved)
        self.smoother = Smoother(spool_id=spool.spool_id, next_seq=spool.next_seq,
                                 exit_after=s.exit_after_s, max_duration=s.max_duration,
                                 max_open=s.max_open)
        self._clock_status = self._clock_check.check(self._clock())
        if self._clock_status.suspect:
            event(log, logging.WARNING, "clock_suspect", reason=self._clock_status.reason)
        key = s.edge_key_bytes()
        self.edge = None if key is None else EdgeList(key, self._topics.edge_watchlist, s.spool,
                                                      verifier)
        self.publisher = Publisher(
            gateway_id=s.gateway_id, topics=self._topics, brokers=s.broker(), verifier=verifier,
            on_receipt=self._receipts.append,
            on_edge_watchlist=None if self.edge is None else self.edge.on_payload,
            on_window=lambda: self._queue.put("wake"),
            on_presence=self._on_presence,
            protocol=s.mqtt_protocol, keepalive=s.mqtt_keepalive,
            max_inflight=s.max_inflight, backoff=gateway_backoff(s.mqtt_reconnect_max),
            clock=self._clock)
        link_stop = threading.Event()
        link_thread = threading.Thread(target=self.link.run, args=(link_stop,), name="link",
                                       daemon=True)
        self.publisher.start()
        link_thread.start()
        try:
            self._loop(stop)
        finally:
            link_stop.set()
            link_thread.join(5.0)
            self._shutdown()
            if metrics is not None:
                metrics.shutdown()
        return 0

    def _loop(self, stop: threading.Event) -> None:
        s = self.settings
        assert self.publisher is not None and self.spool is not None
        spool, pub = self.spool, self.publisher
        mono = time.monotonic
        next_health = mono() + min(1.0, s.health_every)
        next_checkpoint = mono() + _CHECKPOINT_S
        next_limit = mono() + _LIMIT_CHECK_S
        more_backlog = False
        was_connected = False
        while not stop.is_set():
            now_m = mono()
            deadline = min(next_health, next_checkpoint, next_limit, now_m + 0.5)
            with self._lock:
                expiry = self.smoother.next_expiry()
            if expiry is not None:
                deadline = min(deadline, now_m + (expiry - self._clock()).total_seconds())
            if pub.connected:
                if more_backlog:
                    deadline = now_m
                elif pub.window_free() > 0:
                    # With the window full, waiting for due rows would spin: the publisher
                    # wakes us when acks free half of it.
                    due = spool.next_due()
                    if due is not None:
                        deadline = min(deadline, due)
            self._wait(max(0.0, deadline - now_m))
            self._step()
            connected = pub.connected
            if connected:
                if not was_connected:
                    next_health = min(next_health, mono())  # say who we are at once
                more_backlog = self._pump()
            was_connected = connected
            now_m = mono()
            if now_m >= next_checkpoint:
                next_checkpoint = now_m + _CHECKPOINT_S
                with self._lock:
                    dirty = self.smoother.dirty()
                spool.checkpoint(dirty)
                spool.commit()
            if now_m >= next_limit:
                next_limit = now_m + _LIMIT_CHECK_S
                self.counters["dropped"] += spool.enforce_limit()
            if now_m >= next_health:
                next_health = now_m + s.health_every
                self._publish_health()

    def _wait(self, timeout: float) -> None:
        """Sleep until a wake-up token comes or ``timeout`` passes; take every token."""
        self.counters["core_wakeups"] += 1
        with contextlib.suppress(queue.Empty):
            if timeout > 0:
                self._queue.get(timeout=timeout)
            else:
                self._queue.get_nowait()
        for _ in range(self._queue.qsize()):
            self._queue.get_nowait()

    # --- one iteration: reads -> sightings -> spool -> MQTT -------------------------------

    def _stamp(self, read: TagRead, reader_id: str, received_at: datetime) -> StampedRead:
        rt = read.reader_time
        if rt is not None:
            rt = (rt.replace(tzinfo=self._zone) if rt.tzinfo is None else rt).astimezone(UTC)
        return StampedRead(read, self.settings.gateway_id, reader_id, received_at, rt)

    def _step(self) -> None:
        assert self.spool is not None
        self._centre_epochs()
        receipts = [self._receipts.popleft() for _ in range(len(self._receipts))]
        now = self._clock()
        with self._lock:
            # Reset the flag with the list taken: a sighting the link adds after this brings
            # its own wake-up, so none waits for a timer.
            self._events_signalled = False
            events, self._events = self._events, []
            events += self.smoother.expire(now)
        for r in receipts:
            deleted, marked = self.spool.apply_receipt(r)
            self.counters["receipts"] += 1
            self.counters["receipted"] += deleted
            self.counters["receipted_open"] += marked
        if events:
            self._clock_status = self._clock_check.check(now)
            self._store_and_publish(events)
        elif receipts:
            self.spool.commit()

    def _store_and_publish(self, events: list[Sighting]) -> None:
        assert self.spool is not None and self.publisher is not None
        suspect_now = self._clock_status.suspect
        if self.publisher.connected:  # the priority lane first, ahead of the spool
            self.counters["hits"] += send_hits(
                self.edge, events, gateway_id=self.settings.gateway_id,
                spool_id=self.spool.spool_id, now=self._clock(), clock_suspect=suspect_now,
                publish=lambda p: self.publisher is not None and self.publisher.publish(
                    self._topics.hits(self.settings.gateway_id), p, qos=1))
        by_suspect: dict[bool, list[Sighting]] = {False: [], True: []}
        for s in events:
            if s.state == "open":
                self.counters["sightings"] += 1
                if suspect_now:
                    self._suspect_seqs.add(s.seq)
                by_suspect[suspect_now].append(s)
            else:
                flag = suspect_now or s.seq in self._suspect_seqs
                self._suspect_seqs.discard(s.seq)
                by_suspect[flag].append(s)
        live = self.publisher.connected
        stored = {flag: list(zip(group, self.spool.put(group, suspect=flag, publishing=live),
                                 strict=True))
                  for flag, group in by_suspect.items()}
        self.spool.commit()
        if not live:
            return
        failed: list[int] = []
        for flag, pairs in stored.items():
            # Opens first, all in one message: the alert path. Closed ones after, batched.
            opens = [p for p in pairs if p[0].state == "open"]
            closed = [p for p in pairs if p[0].state == "closed"]
            for part in (opens, closed):
                for i in range(0, len(part), self.settings.batch_max):
                    chunk = part[i:i + self.settings.batch_max]
                    if self.publisher.publish_sightings(self.spool.spool_id,
                                                        [body for _, body in chunk],
                                                        clock_suspect=flag):
                        self.counters["published"] += len(chunk)
                        self.counters["publish_messages"] += 1
                    else:
                        failed.extend(s.seq for s, _ in chunk)
        if failed:
            self.spool.make_due(failed)
            self.spool.commit()

    def _pump(self) -> bool:
        """Publish due backlog into the free part of the window; True if more is due."""
        assert self.spool is not None and self.publisher is not None
        batch = self.settings.batch_max
        budget = min(_PUMP_MESSAGES, self.publisher.window_free())
        if budget <= 0:
            return False  # the publisher wakes us when acks free the window
        rows = self.spool.due(batch * budget)
        if not rows:
            return False
        self.spool.mark_sent([r.seq for r in rows])
        self.spool.commit()
        failed: list[int] = []
        sent = 0
        for (spool_id, suspect), grp in groupby(rows, key=lambda r: (r.spool_id, r.suspect)):
            group: list[SpoolRow] = list(grp)
            for i in range(0, len(group), batch):
                chunk = group[i:i + batch]
                if self.publisher.publish_sightings(spool_id, [r.body for r in chunk],
                                                    clock_suspect=suspect):
                    sent += 1
                    self.counters["publish_messages"] += 1
                    for r in chunk:
                        self.counters["republished" if r.tries else "published"] += 1
                else:
                    failed.extend(r.seq for r in chunk)
        if failed:
            self.spool.make_due(failed)
            self.spool.commit()
            return False
        return len(rows) == batch * budget

    # --- health -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The health payload (pak/schemas/health.json). Core thread only (reads the spool)."""
        assert self.spool is not None and self.publisher is not None
        now = self._clock()
        self._clock_status = self._clock_check.check(now)
        ls: dict[str, Any] = self.link.status() if self.link is not None else {"state": "down"}
        with self._lock:
            readers = sorted(self._readers)
            open_now = len(self.smoother)
        return health_payload(
            gateway_id=self.settings.gateway_id, now=now,
            uptime_s=time.monotonic() - self._started, readers=readers, open_now=open_now,
            link_status=ls, clock=self._clock_status, totals=self.counters,
            smoother=self.smoother.stats, publisher=self.publisher.stats,
            inflight=self.publisher.inflight, spool=self.spool)

    def _publish_health(self) -> None:
        assert self.publisher is not None
        h = self.health()
        self.metrics.update(h)
        if self._clock_status.suspect:
            event(log, logging.WARNING, "clock_suspect", reason=self._clock_status.reason)
        self.publisher.publish(self._topics.health(self.settings.gateway_id), dumps(h), qos=1)

    # --- metrics (optional) ---------------------------------------------------------------

    def _start_metrics(self) -> Any:
        """Serve the health snapshot as Prometheus metrics (gateway.metrics)."""
        address = self.settings.metrics_address()
        assert address is not None
        host, port = address
        try:
            server = self.metrics.serve(host, port)
        except OSError as e:
            raise ConfigError(f"setting metrics_listen: {host}:{port}: {e}") from None
        event(log, logging.INFO, "metrics_listening", url=f"http://{host}:{port}/metrics")
        return server

    # --- stop -------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Fold what the link delivered, close every open sighting into the spool, try once to
        publish them, say offline. The spool keeps whatever the centre has not receipted."""
        spool, pub = self.spool, self.publisher
        if spool is None or pub is None:
            return
        try:
            self._step()
            with self._lock:
                closing = self.smoother.close_all()
            if closing:
                self._store_and_publish(closing)
            spool.commit()
            event(log, logging.INFO, "gateway_stopping", closed=len(closing),
                  reads=self.counters["reads"], core_wakeups=self.counters["core_wakeups"],
                  spool_depth=spool.depth(), spool_id=spool.spool_id)
        finally:
            with contextlib.suppress(Exception):
                pub.stop()
            spool.close()

