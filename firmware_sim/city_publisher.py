"""Play the simulated city as its gateways: publish each passage as sightings over MQTT.

Every reader of the city gets a virtual gateway (wire contract v1: its own topic, spool id
and seq numbers); a passage becomes an ``open`` sighting when the vehicle arrives and a
``closed`` one when it leaves, each published at the moment it happens on a clock that runs
``speed`` times faster than real time (1.0 for the demo's live map, higher to replay a busy
morning in minutes), or, with ``rate``, as fast as that many sightings per second allows
(load tests). Timestamps are real UTC times, so the tracker sees current traffic.

Receipts are not tracked: the city is a traffic source, not an edge box (the gateway's own
spool and republishing are tested with the real gateway).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from firmware_sim.city import City, Passage
from pak.broker_url import Brokers
from pak.logs import event
from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire import Topics, encode_sightings

__all__ = ["CityPublisher", "CityStats"]

log = logging.getLogger("pak.sim.city")


@dataclass
class CityStats:
    passages: int = 0
    sightings: int = 0
    messages: int = 0
    missed: int = 0


class CityPublisher:
    def __init__(self, city: City, mqtt_url: str | Brokers, *, topic_root: str = "pak/v1",
                 protocol: str = "5", speed: float = 1.0, rate: float | None = None,
                 sim_start: datetime | None = None, batch: int = 1) -> None:
        self.city = city
        self.brokers = mqtt_url if isinstance(mqtt_url, Brokers) else Brokers.parse(mqtt_url)
        self.topics = Topics(topic_root)
        self.protocol = protocol
        self.speed = speed
        self.rate = rate
        self.batch = max(1, batch)
        self.sim_start = sim_start
        self.stats = CityStats()
        self._spool = {r.gateway_id: "city-" + secrets.token_hex(4) for r in city.readers}
        self._seq: defaultdict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1))
        self._gw_of = {r.reader_id: r.gateway_id for r in city.readers}
        self._first: dict[tuple[str, int], datetime] = {}
        self._pending: list[Any] = []

    def _events(self, start: datetime) -> Iterator[tuple[datetime, int, Sighting]]:
        """(sim time, order, sighting) for opens and closes, in sim-time order."""
        counter = itertools.count()
        pending: list[tuple[datetime, int, Sighting]] = []
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        days = itertools.count()
        for p in self._passages(day, days):
            if p.at < start:
                continue
            while pending and pending[0][0] <= p.at:
                yield heapq.heappop(pending)
            self.stats.passages += 1
            if not p.heard:
                self.stats.missed += 1
                continue
            gw = self._gw_of[p.reader_id]
            seq = next(self._seq[gw])
            opened = Sighting(gw, self._spool[gw], seq, "open", p.tag_id, "active", p.reader_id,
                              p.at, p.at, 1, tag_type=0x30,
                              antenna=p.antennas[0] if p.antennas else None,
                              antennas=p.antennas[:1], rssi_max_dbm=-70.0, rssi_max_raw=186)
            yield p.at, next(counter), opened
            leave = p.at + timedelta(seconds=p.dwell_s)
            closed = opened.replace(state="closed", last_seen=leave, reads=max(1, int(p.dwell_s)),
                                    antennas=p.antennas, rssi_max_dbm=-58.0, rssi_max_raw=198)
            heapq.heappush(pending, (leave, next(counter), closed))
        while pending:
            yield heapq.heappop(pending)

    def _passages(self, day: datetime, days: itertools.count[int]) -> Iterator[Passage]:
        for d in days:
            yield from self.city.passages(day + timedelta(days=d), 1)

    def run(self, stop: threading.Event, duration_s: float | None = None) -> CityStats:
        from pak.mqtt import CENTRE_BACKOFF, make_client

        client = make_client(self.brokers, backoff=CENTRE_BACKOFF,
                             client_id=f"pak-city-{secrets.token_hex(3)}",
                             protocol="3.1.1" if self.protocol == "3.1.1" else "5")
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.connect_first()
        client.loop_start()
        real0 = time.monotonic()
        wall0 = utcnow()
        sim0 = self.sim_start or wall0.replace(hour=7, minute=30, second=0, microsecond=0)
        event(log, logging.INFO, "city_started", readers=len(self.city.readers),
              vehicles=len(self.city.fleet), speed=self.speed, rate=self.rate,
              sim_start=sim0.isoformat())
        by_gw: defaultdict[str, list[Sighting]] = defaultdict(list)
        last_report = real0
        try:
            for i, (sim_t, _, s) in enumerate(self._events(sim0)):
                if stop.is_set():
                    break
                elapsed = time.monotonic() - real0
                if duration_s is not None and elapsed >= duration_s:
                    break
                due = i / self.rate if self.rate else (sim_t - sim0).total_seconds() / self.speed
                if due > elapsed:
                    self._flush(client, by_gw)
                    if stop.wait(due - elapsed):
                        break
                s = self._to_real_time(s, wall0 + timedelta(seconds=due))
                by_gw[s.gateway_id].append(s)
                if len(by_gw[s.gateway_id]) >= self.batch or s.state == "open":
                    self._send(client, s.gateway_id, by_gw.pop(s.gateway_id))
                now = time.monotonic()
                if now - last_report >= 10:
                    last_report = now
                    event(log, logging.INFO, "city_progress", sightings=self.stats.sightings,
                          messages=self.stats.messages, passages=self.stats.passages)
            self._flush(client, by_gw)
            # let the last messages reach the broker before hanging up
            deadline = time.monotonic() + 10
            for info in self._pending:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        finally:
            client.disconnect()
            client.loop_stop()
        return self.stats

    def _to_real_time(self, s: Sighting, now: datetime) -> Sighting:
        """Real timestamps: an open sighting starts now; its closed form keeps that same
        first_seen (the centre's key includes it) and a dwell scaled by ``speed``."""
        key = (s.gateway_id, s.seq)
        if s.state == "open":
            self._first[key] = now
            return s.replace(first_seen=now, last_seen=now)
        first = self._first.pop(key)
        dwell = (s.last_seen - s.first_seen) / (1.0 if self.rate else self.speed)
        return s.replace(first_seen=first, last_seen=first + dwell)

    def _flush(self, client: object, by_gw: defaultdict[str, list[Sighting]]) -> None:
        for gw in list(by_gw):
            self._send(client, gw, by_gw.pop(gw))

    def _send(self, client: object, gateway_id: str, items: list[Sighting]) -> None:
        if not items:
            return
        payload = encode_sightings(gateway_id, items[0].spool_id, items, utcnow())
        info = client.publish(self.topics.sightings(gateway_id), payload, qos=1)  # type: ignore[attr-defined]
        self._pending.append(info)
        if len(self._pending) > 5000:
            self._pending = [i for i in self._pending if not i.is_published()]
        self.stats.sightings += len(items)
        self.stats.messages += 1
