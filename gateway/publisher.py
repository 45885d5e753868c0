"""MQTT side of the gateway: sightings out (QoS 1), retained state, health, receipts in.

paho-mqtt 2.x (callback API version 2) runs its own network thread (``loop_start``), which
connects, and reconnects with paho's capped back-off, by itself. This class adds what the
wire contract and an unattended box need:

* a persistent session (MQTT 5 ``clean_start=False`` with a session expiry; 3.1.1
  ``clean_session=False``) under a client id derived from the gateway id, so the receipts the
  centre sends while the link is down wait at the broker;
* retained ``state``: ``online`` on every connect, ``offline`` as the will (and on a clean stop);
* the receipts subscription (this gateway's own topic only), handed to ``on_receipt``, and the
  centre's presence (``{root}/centre``, retained), handed to ``on_presence``;
* a bounded window of unacknowledged sightings messages: paho refuses a QoS 1 publish once
  65,535 are in flight, and a deep queue inside paho would put live sightings behind the
  backlog. The runtime publishes live sightings at once and fills only the rest of the window
  with the backlog;
* transitions logged once (connected, lost, unreachable), not once per retry.

Payload of ``{root}/gw/{gateway_id}/sightings`` (pak/schemas/sightings.json)::

    {"v":1, "gateway_id":ID, "spool_id":ID, "sent_at":TIME, ["clock_suspect":true,]
     "sightings":[{sighting}, ...]}      1..1000 sighting objects as stored in the spool
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pak import __version__
from pak.broker_url import Brokers
from pak.errors import WireError
from pak.logs import event
from pak.mqtt import Backoff, make_client
from pak.timefmt import format_time, utcnow
from pak.wire import Receipt, Topics, encode_state, parse_receipts
from pak.wire.envelope import Refusals, VerifierLike, accept_control
from pak.wire.presence import Presence, parse_presence

__all__ = ["Publisher", "PublisherStats", "client_id_for", "sightings_payload"]

log = logging.getLogger("pak.gateway.mqtt")

#: The broker keeps a disconnected gateway's session (its queued receipts) this long.
SESSION_EXPIRY_S = 7 * 86400


def client_id_for(gateway_id: str) -> str:
    """The MQTT client id: stable per gateway, so the broker keeps its session."""
    return f"pak-gw-{gateway_id}"


def sightings_payload(gateway_id: str, spool_id: str, sent_at: datetime,
                      bodies: Sequence[bytes], *, clock_suspect: bool = False) -> bytes:
    """A sightings message around sighting objects already encoded (the spool keeps them as
    JSON, so a backlog drains without decoding and re-encoding every sighting)."""
    if not 1 <= len(bodies) <= 1000:
        raise ValueError("a sightings message carries 1..1000 sightings")
    head = orjson.dumps({"v": 1, "gateway_id": gateway_id, "spool_id": spool_id,
                         "sent_at": format_time(sent_at)})
    suspect = b',"clock_suspect":true' if clock_suspect else b""
    return head[:-1] + suspect + b',"sightings":[' + b",".join(bodies) + b"]}"


@dataclass(slots=True)
class PublisherStats:
    messages: int = 0
    sightings: int = 0
    acked: int = 0
    connects: int = 0
    disconnects: int = 0
    receipts: int = 0
    receipts_bad: int = 0
    refused: int = 0
    presence: int = 0
    presence_bad: int = 0


class Publisher:
    """One MQTT connection for one gateway. Thread-safe: the runtime's core thread publishes,
    paho's network thread runs the callbacks."""

    def __init__(
        self,
        *,
        gateway_id: str,
        topics: Topics,
        brokers: Brokers,
        on_receipt: Callable[[Receipt], None],
        on_window: Callable[[], None] = lambda: None,
        on_presence: Callable[[Presence], None] = lambda p: None,
        on_edge_watchlist: Callable[[bytes], None] | None = None,
        protocol: str = "5",
        keepalive: int = 30,
        max_inflight: int = 1000,
        backoff: Backoff,
        clock: Callable[[], datetime] = utcnow,
        verifier: VerifierLike | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self._verifier = verifier
        self._refusals = Refusals(log, "receipts")
        self.topics = topics
        self.max_inflight = max_inflight
        self._on_receipt = on_receipt
        self._on_window = on_window
        self._on_presence = on_presence
        self._centre_topic = topics.centre
        self._clock = clock
        self._v5 = protocol == "5"
        self.stats = PublisherStats()
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # mid -> sightings it carries (0: state, health)
        self._inflight_msgs = 0  # sightings messages among them: the window
        self._early: set[int] = set()  # acks that beat publish() returning the mid
        self._window_waiter = False
        self._connected = False
        self._stopping = False
        self._unreachable_logged = False
        self._receipt_topic = topics.receipts(gateway_id)
        self._state_topic = topics.state(gateway_id)
        self._on_edge = on_edge_watchlist  # gateway/edge_watchlist.py (with --edge-key only)
        self._edge_topic = topics.edge_watchlist

        c = make_client(brokers, backoff=backoff, client_id=client_id_for(gateway_id),
                        protocol="5" if self._v5 else "3.1.1", clean_session=False)
        # paho's own cap sits above ours: live sightings published past a full backlog window
        # must go out now, not queue inside paho behind it.
        c.max_inflight_messages_set(max_inflight * 2 + 100)
        c.max_queued_messages_set(0)
        c.on_socket_open = self._socket_open
        c.on_pre_connect = self._pre_connect
        c.on_connect = self._connected_cb
        c.on_connect_fail = self._connect_fail_cb
        c.on_disconnect = self._disconnected_cb
        c.on_publish = self._published_cb
        c.on_message = self._message_cb
        self._client = c
        self._keepalive = keepalive

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (a broker that is down at start is retried)."""
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.start(self._keepalive, clean_start=False, properties=props)

    def stop(self, timeout: float = 3.0) -> None:
        """Say ``offline`` (retained; the will is not sent on a clean disconnect), disconnect."""
        self._stopping = True
        if self.connected:
            info = self._client.publish(self._state_topic, self._state("offline"), qos=1,
                                        retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    # --- publishing -----------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight_msgs

    def window_free(self) -> int:
        """How many more sightings messages the backlog may publish now."""
        with self._lock:
            free = self.max_inflight - self._inflight_msgs
            if free <= 0:
                self._window_waiter = True
            return max(0, free)

    def publish_sightings(self, spool_id: str, bodies: Sequence[bytes], *,
                          clock_suspect: bool = False) -> bool:
        """Publish one sightings message (QoS 1). False when it was not handed to the
        connection (not connected, or refused): the spool republishes it later."""
        if not self._connected:
            return False
        payload = sightings_payload(self.gateway_id, spool_id, self._clock(), bodies,
                                    clock_suspect=clock_suspect)
        info = self._client.publish(self.topics.sightings(self.gateway_id), payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            # MQTT_ERR_QUEUE_SIZE: paho's 16-bit packet ids are exhausted.
            self.stats.refused += 1
            return False
        self._track(info.mid, len(bodies))
        with self._lock:
            self.stats.messages += 1
            self.stats.sightings += len(bodies)
        return True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Publish something other than sightings (health): outside the window."""
        if not self._connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        self._track(info.mid, 0)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _track(self, mid: int, sightings: int) -> None:
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
                if sightings:
                    self.stats.acked += 1
                return
            self._pending[mid] = sightings
            if sightings:
                self._inflight_msgs += 1

    # --- paho callbacks (network thread) --------------------------------------------------

    def _state(self, state: str) -> bytes:
        return encode_state(state, self._clock(), gateway_id=self.gateway_id,
                            version=__version__)

    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle on: a publish written while an earlier small packet is still
        # unacknowledged would wait for the broker's delayed ACK (40 ms on Linux), twice the
        # whole latency budget of an open sighting.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # The will carries the time this session began; the broker sends it if we vanish.
        client.will_set(self._state_topic, self._state("offline"), qos=1, retain=True)

    def _connected_cb(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                      reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._connect_problem(f"refused: {reason}")
            return
        self.stats.connects += 1
        subs = [(self._receipt_topic, 1), (self._centre_topic, 1)]
        if self._on_edge is not None:
            subs.append((self._edge_topic, 1))
        client.subscribe(subs)
        info = client.publish(self._state_topic, self._state("online"), qos=1, retain=True)
        self._track(info.mid, 0)
        self._connected = True
        self._unreachable_logged = False
        event(log, logging.INFO, "mqtt_connected", broker=self._client.broker.redacted(),
              session_present=flags.session_present, reconnect=self.stats.connects > 1)
        self._on_window()

    def _connect_fail_cb(self, client: mqtt.Client, userdata: Any) -> None:
        self._connect_problem("unreachable")

    def _connect_problem(self, why: str) -> None:
        if not self._unreachable_logged:
            self._unreachable_logged = True
            event(log, logging.WARNING, "mqtt_unreachable", broker=self._client.broker.redacted(),
                  why=why, note="retrying with back-off; sightings stay in the spool")

    def _disconnected_cb(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                         reason: ReasonCode, properties: Properties | None) -> None:
        was = self._connected
        self._connected = False
        if was and not self._stopping:
            self.stats.disconnects += 1
            self._unreachable_logged = True  # the loss is the one line for this outage
            event(log, logging.WARNING, "mqtt_lost", broker=self._client.broker.redacted(),
                  reason=str(reason))

    def _published_cb(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                      properties: Properties | None) -> None:
        wake = False
        with self._lock:
            n = self._pending.pop(mid, None)
            if n is None:
                # The ack beat publish() returning its mid (or the will's id): note it. Bounded
                # in case a broker acks ids we never sent.
                if len(self._early) > 65536:
                    self._early.clear()
                self._early.add(mid)
                return
            if not n:
                return
            self._inflight_msgs -= 1
            self.stats.acked += 1
            if self._window_waiter and self._inflight_msgs <= self.max_inflight // 2:
                self._window_waiter = False
                wake = True
        if wake:
            self._on_window()

    def _message_cb(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._centre_topic:
            self._presence(bytes(msg.payload))
            return
        if msg.topic == self._edge_topic and self._on_edge is not None:
            self._on_edge(bytes(msg.payload))
            return
        if msg.topic != self._receipt_topic:
            return
        try:
            body = accept_control(bytes(msg.payload), msg.topic, self._verifier)
        except WireError as e:
            # Unsigned, forged or replayed from another gateway's topic: never applied.
            self.stats.receipts_bad += 1
            self._refusals.refuse(msg.topic, e)
            return
        try:
            receipt = parse_receipts(body)
        except WireError as e:
            self.stats.receipts_bad += 1
            _refused("receipt_refused", e, self.stats.receipts_bad)
            return
        if receipt.gateway_id != self.gateway_id:
            self.stats.receipts_bad += 1
            return
        self.stats.receipts += 1
        self._on_receipt(receipt)

    def _presence(self, payload: bytes) -> None:
        try:
            p = parse_presence(payload, self._centre_topic, self._verifier)
        except WireError as e:
            self.stats.presence_bad += 1
            _refused("presence_refused", e, self.stats.presence_bad)
            return
        self.stats.presence += 1
        self._on_presence(p)


def _refused(name: str, e: WireError, count: int) -> None:
    """Log a refused control message: the first few, then one in a thousand."""
    if count <= 3 or count % 1000 == 0:
        event(log, logging.WARNING, name, reason=e.reason, detail=e.detail[:200], count=count)
