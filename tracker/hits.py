"""The priority lane at the centre: hits in, the edge list out, on a connection and thread of
their own (never behind the bulk sightings, a backlog or a batch being written).

* ``{root}/gw/+/hits`` (ordinary subscription, QoS 1): each message is checked with the
  sightings codec (pak/wire/hits.py; the gateway id must be the topic's) and each open
  sighting handed to the stolen handler's fast path
  (:meth:`tracker.alerts.stolen.StolenHandler.on_hit`), which raises the alert only when this
  instance's own watchlist holds the tag: a gateway can make the centre look sooner, never
  make it believe. Nothing from this topic is stored or receipted; the bulk lane carries the
  same sighting into storage and its check stays the backstop.
* ``{root}/edge/watchlist`` (retained, QoS 1), when an edge key is configured: the watched
  tags as keyed hashes (pak/wire/edge_watchlist.py), published at every (re)connect and
  whenever the watchlist changes (an announcement wakes the publisher at once; the periodic
  check catches reloads from storage). ``rev`` is the clock's milliseconds, or one more than
  the last, so gateways can refuse an older snapshot.

Refused hits are counted and logged once per gateway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pak.broker_url import Brokers
from pak.errors import WireError
from pak.logs import event
from pak.mqtt import CENTRE_BACKOFF, Protocol, make_client
from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire.alert import AlertRevisions
from pak.wire.edge_watchlist import encode_edge_watchlist
from pak.wire.envelope import SignerLike, control
from pak.wire.hits import parse_hit
from pak.wire.topics import Topics

__all__ = ["HitLane", "HitStats"]

log = logging.getLogger("pak.tracker.hits")

#: How often the edge publisher compares the watchlist with what it last published.
EDGE_CHECK_S = 2.0


@dataclass(slots=True)
class HitStats:
    received: int = 0  #: hit messages
    raised: int = 0  #: sightings that raised (or updated) an alert through this lane
    ignored: int = 0  #: sightings of tags this instance's watchlist does not hold (or late)
    refused: int = 0  #: messages refused by the codec
    edge_published: int = 0  #: edge list snapshots published


class HitLane:
    """The hit subscription and the edge-list publisher of one tracker instance."""

    def __init__(self, brokers: Brokers, topics: Topics, *,
                 on_hit: Callable[[Sighting, datetime], bool],
                 watched: Callable[[], Iterable[str]],
                 edge_key: bytes | None, client_id: str, protocol: Protocol = "5",
                 clock: Callable[[], datetime] = utcnow,
                 signer: SignerLike | None = None) -> None:
        self.topics = topics
        self._signer = signer  # the edge list goes out signed by the centre's key
        self._on_hit = on_hit
        self._watched = watched
        self._edge_key = edge_key
        self._clock = clock
        self.stats = HitStats()
        self._refused_from: set[str] = set()
        self._revs = AlertRevisions(clock=clock, size=1)
        self._published: frozenset[str] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._lane_thread: int | None = None  # paho's network thread of this connection
        self._subscribed = threading.Event()
        c = make_client(brokers, backoff=CENTRE_BACKOFF, client_id=client_id,
                        protocol=protocol)
        c.on_connect = self._connected_cb
        c.on_disconnect = self._disconnected_cb
        c.on_subscribe = self._subscribed_cb
        c.on_message = self._message_cb
        self._client = c

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._client.start()
        if self._edge_key is not None:
            self._thread = threading.Thread(target=self._edge_run, name="pak-edge-watchlist",
                                            daemon=True)
            self._thread.start()
        else:
            event(log, logging.INFO, "edge_watchlist_off",
                  note="no --edge-key: gateways hold no edge list; hits travel the bulk lane")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._client.disconnect()
        self._client.loop_stop()

    def in_lane(self) -> bool:
        """True on this lane's own network thread (where hits are handled)."""
        return threading.get_ident() == self._lane_thread

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish on this lane's connection (the alerts a hit raised: never queued behind
        the bulk lane's connection and its busy network thread)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the hit subscription is acknowledged (tests, the benchmark)."""
        return self._subscribed.wait(timeout)

    # --- the edge list ----------------------------------------------------------------------

    def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None:
        """WatchlistHook (after the alert engine's cache applied the change): publish now."""
        self._wake.set()

    def _edge_run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(EDGE_CHECK_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._connected.is_set():
                self.publish_edge()

    def publish_edge(self, *, force: bool = False) -> bool:
        """Publish the edge list when it differs from the last one published (or ``force``);
        True when a snapshot went out."""
        if self._edge_key is None:
            return False
        tags = frozenset(self._watched())
        if tags == self._published and not force:
            return False
        rev = self._revs.next("edge")
        payload = control(encode_edge_watchlist(self.topics.edge_watchlist, rev, self._edge_key,
                                                tags), self._signer, self.topics.edge_watchlist)
        info = self._client.publish(self.topics.edge_watchlist, payload, qos=1, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False  # not connected: the next connect publishes it
        self._published = tags
        self.stats.edge_published += 1
        event(log, logging.INFO, "edge_watchlist_published", rev=rev, watched=len(tags))
        return True

    # --- paho callbacks (this lane's own network thread) -------------------------------------

    def _connected_cb(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                      reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            event(log, logging.WARNING, "hit_lane_refused", reason=str(reason))
            return
        self._lane_thread = threading.get_ident()
        client.subscribe(self.topics.all_gateways("hits"), qos=1)
        self._connected.set()
        self._published = None  # a broker that restarted may have lost the retained list
        self._wake.set()

    def _subscribed_cb(self, *args: Any) -> None:
        self._subscribed.set()
        event(log, logging.INFO, "hit_lane_subscribed", topic=self.topics.all_gateways("hits"))

    def _disconnected_cb(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                         reason: ReasonCode, properties: Properties | None) -> None:
        self._connected.clear()

    def _message_cb(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received_at = self._clock()
        gid = self.topics.gateway_of(msg.topic, "hits")
        if gid is None:
            return
        self.stats.received += 1
        try:
            hit = parse_hit(bytes(msg.payload), topic_gateway_id=gid, now=received_at)
        except WireError as e:
            self.stats.refused += 1
            if gid not in self._refused_from and len(self._refused_from) < 10_000:
                self._refused_from.add(gid)
                event(log, logging.WARNING, "hit_refused", gateway_id=gid, reason=e.reason,
                      detail=e.detail[:200], note="logged once per gateway")
            return
        for s in hit.sightings:
            try:
                raised = self._on_hit(s, received_at)
            except Exception:  # the bulk lane's check still catches this sighting
                log.exception("hit lane: raising the alert of %s failed", s.tag_id)
                continue
            if raised:
                self.stats.raised += 1
            else:
                self.stats.ignored += 1
