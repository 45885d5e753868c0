"""The tracker's MQTT client (paho-mqtt 2.x): persistent session, manual acks, resubscription.

MQTT 5 where the broker speaks it:

* a persistent session (Clean Start 0 and a Session Expiry Interval), so messages delivered but
  not acked when the tracker stops are delivered again when it comes back;
* a Receive Maximum large enough that batches fill: a tracker acks only after its batch has
  committed, so the broker's window of unacked messages *is* the batch pipeline's depth;
* a Maximum Packet Size, so no broker can push the tracker a message it would never accept;
* sightings through a shared subscription (``$share/{group}/{root}/gw/+/sightings``): several
  trackers split the stream; ``state``, ``health`` and ``watchlist`` through ordinary
  subscriptions, because retained messages are not delivered to shared subscribers and every
  instance needs them all.

A broker without MQTT 5 (it answers "unsupported protocol version", or, like amqtt, never
answers an MQTT 5 CONNECT at all: no CONNACK within ``connack_timeout``) gets MQTT 3.1.1 with a
persistent session (clean session 0) and a plain subscription to the sightings; several
trackers on such a broker each receive everything (harmless, the merge is idempotent, but
wasteful: a warning says so).

Manual acks and reconnects: a message is acked on the connection that delivered it or not at
all. Every successful CONNACK starts a new *generation*; an :class:`Ack` of an older generation
is dropped, because the broker has either forgotten the message (a session lost with the
broker) or will deliver it again with the same packet id, and a stale packet id acked on the
new connection could acknowledge a different message.

The client comes from ``pak.mqtt.make_client`` (credentials, TLS, the broker list it fails over
between) with the centre's back-off, ``CENTRE_BACKOFF``: 1 s doubling to 5 s, so the tracker
is back within about 5 s of the broker's return.

Presence (``presence``, ingest/presence.py): the centre's topic is one more plain subscription;
when the broker acknowledges this connection's subscriptions (the SUBACK, after every
connect), the consumer publishes the retained presence message with a new epoch and logs
``centre_presence``; messages on that topic go to the presence bookkeeping, not the handler.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.presence import CentrePresence
from pak.broker_url import Brokers, BrokerUrl, TlsFiles
from pak.logs import event
from pak.mqtt import CENTRE_BACKOFF, PakClient, make_client

__all__ = ["Ack", "MessageHandler", "MqttConsumer", "Protocol"]

log = logging.getLogger("pak.ingest.mqtt")

Protocol = Literal["auto", "5", "3.1.1"]

#: CONNACK reason "Unsupported Protocol Version" (MQTT 5 0x84; paho maps the 3.1.1 code 1 to
#: it too): the broker does not speak MQTT 5.
_UNSUPPORTED_PROTOCOL = 0x84


class Ack(NamedTuple):
    """What acknowledging one message needs: its packet id and QoS on one connection."""

    mid: int
    qos: int
    generation: int


#: ``handler(topic, payload, ack, retained)``; ``ack`` is None for QoS 0 (nothing to ack).
MessageHandler = Callable[[str, bytes, Ack | None, bool], None]


class MqttConsumer:
    """One MQTT connection of the tracker, kept up by paho's network thread."""

    def __init__(
        self,
        url: str | BrokerUrl | Brokers,
        *,
        client_id: str,
        on_message: MessageHandler,
        shared: Sequence[str],
        plain: Sequence[str],
        group: str,
        protocol: Protocol = "auto",
        receive_maximum: int = 20_000,
        session_expiry: int = 3600,
        max_packet_size: int | None = None,
        keepalive: int = 30,
        tls_ca: str | None = None,
        connack_timeout: float = 5.0,
        presence: CentrePresence | None = None,
    ) -> None:
        if isinstance(url, Brokers):
            self.brokers = url
        else:
            one = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
            self.brokers = Brokers((one,), TlsFiles(ca=tls_ca))
        self.client_id = client_id
        self._handler = on_message
        self._shared = list(shared)
        self._presence = presence
        self._plain = list(plain) + ([presence.topic] if presence is not None else [])
        self._sub_mid: int | None = None  # the SUBSCRIBE whose SUBACK announces presence
        self._group = group
        self._requested: Protocol = protocol
        self._receive_maximum = receive_maximum
        self._session_expiry = session_expiry
        self._max_packet_size = max_packet_size
        self._keepalive = keepalive
        self._connack_timeout = connack_timeout
        # when the current attempt's TCP connection opened (monotonic), None once answered or
        # failed: the watchdog of protocol "auto" falls back when an MQTT 5 CONNECT sent on
        # an open connection gets no answer (an unreachable host is not a missing protocol)
        self._attempt_since: float | None = None
        self._v5_answered = False
        self._lock = threading.Lock()  # guards the generation, the connection flag and acks
        self._generation = 0
        self._connected = False
        self._connected_once = threading.Event()
        self._warned_unreachable = False
        self._stopped = False
        # publishes queued and completed (PUBACK, or written for QoS 0), for flush(); counted
        # rather than tracked by MQTTMessageInfo, whose is_published() raises for a message
        # queued while disconnected even after paho has delivered it.
        self._out_count = 0
        self._done_count = 0
        self.protocol: Literal["5", "3.1.1"] = "3.1.1" if protocol == "3.1.1" else "5"
        self._client = self._make_client(self.protocol)

    # --- set-up --------------------------------------------------------------------------------

    def _make_client(self, protocol: Literal["5", "3.1.1"]) -> PakClient:
        v5 = protocol == "5"
        c = make_client(self.brokers, backoff=CENTRE_BACKOFF, client_id=self.client_id,
                        protocol="5" if v5 else "3.1.1", clean_session=False, manual_ack=True)
        # No window of paho's own for our publishes: with one, paho rescans every queued
        # message on each PUBACK (quadratic in a burst of receipts); Ingest bounds what is
        # outstanding instead (``outstanding``).
        c.max_inflight_messages_set(0)
        c.on_socket_open = self._on_socket_open
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        return c

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry
        props.ReceiveMaximum = self._receive_maximum
        if self._max_packet_size is not None:
            props.MaximumPacketSize = self._max_packet_size
        return props

    def start(self) -> None:
        """Connect in the background (paho retries until the broker answers)."""
        c = self._client
        if self.protocol == "5":
            c.start(self._keepalive, clean_start=False, properties=self._connect_properties())
        else:
            c.start(self._keepalive)
        if self._requested == "auto" and self.protocol == "5":
            threading.Thread(target=self._watch_connack, name="pak-mqtt-connack",
                             daemon=True).start()

    def _watch_connack(self) -> None:
        """Fall back to 3.1.1 when an MQTT 5 CONNECT stays unanswered (some 3.1.1 brokers
        cannot parse its properties and wait for bytes that never come). Ends once any MQTT 5
        CONNACK arrived: from then on, silence is a slow broker, not a missing protocol."""
        while not self._stopped and not self._v5_answered and self.protocol == "5":
            since = self._attempt_since
            if since is not None and time.monotonic() - since > self._connack_timeout:
                event(log, logging.WARNING, "mqtt_fallback", broker=self.broker_name,
                      why=f"no answer to an MQTT 5 CONNECT in {self._connack_timeout:g} s; "
                          "using 3.1.1 without shared subscriptions")
                self._attempt_since = None
                self._fall_back()
                return
            time.sleep(0.1)

    @property
    def broker_name(self) -> str:
        """The broker now in use, for log lines (no password)."""
        return self._client.broker.redacted()

    def wait_connected(self, timeout: float) -> bool:
        """True once the first connection is up (for start-up logs and tests)."""
        return self._connected_once.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected

    def subscriptions(self) -> list[str]:
        """The topic filters of this connection (shared ones only under MQTT 5)."""
        if self.protocol == "5":
            return [f"$share/{self._group}/{t}" for t in self._shared] + self._plain
        return self._shared + self._plain

    # --- paho callbacks (network thread) -------------------------------------------------------

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._attempt_since = time.monotonic()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        self._attempt_since = None
        if reason.is_failure:
            if reason.value == _UNSUPPORTED_PROTOCOL and self._requested == "auto" \
                    and self.protocol == "5":
                event(log, logging.WARNING, "mqtt_fallback", broker=self.broker_name,
                      why="the broker does not speak MQTT 5; using 3.1.1 without shared "
                          "subscriptions")
                client.disconnect()
                threading.Thread(target=self._fall_back, name="pak-mqtt-fallback",
                                 daemon=True).start()
                return
            self._v5_answered = self.protocol == "5"
            event(log, logging.ERROR, "mqtt_refused", broker=self.broker_name,
                  reason=str(reason))
            return
        self._v5_answered = self.protocol == "5"
        sock = client.socket()
        if isinstance(sock, socket.socket):  # also an ssl.SSLSocket
            # Alerts are single small writes between bursts of acks: without this, Nagle
            # holds one until the broker acknowledges the burst (measured: p50 17 ms -> 6 ms)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._generation += 1
            self._connected = True
        self._warned_unreachable = False
        topics = self.subscriptions()
        if self.protocol == "5":
            _, mid = client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
        else:
            _, mid = client.subscribe([(t, 1) for t in topics])
        self._sub_mid = mid
        event(log, logging.INFO, "mqtt_connected", broker=self.broker_name,
              protocol=self.protocol, session_present=bool(flags.session_present),
              client_id=self.client_id, subscriptions=",".join(topics))
        if self.protocol == "3.1.1" and self._requested == "auto":
            event(log, logging.WARNING, "mqtt_no_shared_subscription",
                  why="every tracker on this broker receives every sighting")
        self._connected_once.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Properties | None) -> None:
        if mid != self._sub_mid:
            return
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            # A subscription the broker refuses (the ACL) is a deployment error: say so, and
            # do not announce a centre that does not receive what it should.
            event(log, logging.ERROR, "mqtt_subscribe_refused", broker=self.broker_name,
                  subscriptions=",".join(self.subscriptions()), reasons=",".join(refused))
            return
        if self._presence is not None:
            self._announce(client, self._presence.subscribed(), "subscribed")

    def _announce(self, client: mqtt.Client, payload: bytes, why: str) -> None:
        assert self._presence is not None
        with self._lock:
            self._out_count += 1
        client.publish(self._presence.topic, payload, qos=1, retain=True)
        event(log, logging.INFO, "centre_presence", epoch=self._presence.epoch, why=why,
              topic=self._presence.topic)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._attempt_since = None
        if not self._warned_unreachable:
            self._warned_unreachable = True
            event(log, logging.WARNING, "mqtt_unreachable", broker=self.broker_name,
                  action="retrying")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if was and not self._stopped:
            event(log, logging.WARNING, "mqtt_disconnected", broker=self.broker_name,
                  reason=str(reason), action="reconnecting; unacked messages come again")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        qos = msg.qos
        ack = Ack(msg.mid, qos, self._generation) if qos else None
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never trust that
            topic = msg._topic.decode("utf-8", "replace")
        payload = msg.payload
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if self._presence is not None and topic == self._presence.topic:
            again = self._presence.received(payload, bool(msg.retain))
            if again is not None:
                self._announce(client, again, "retained_epoch_not_below")
            if ack is not None:
                client.ack(ack.mid, ack.qos)
            return
        try:
            self._handler(topic, payload, ack, bool(msg.retain))
        except Exception:
            # Never let an exception end paho's network thread; the message stays unacked and
            # comes again with the next session.
            log.exception("message handler failed")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties) -> None:
        with self._lock:
            self._done_count += 1

    def _fall_back(self) -> None:
        old = self._client
        old.disconnect()
        old.loop_stop()
        if self._stopped:
            return
        self.protocol = "3.1.1"
        self._client = self._make_client("3.1.1")
        self.start()

    # --- acks and publishing (any thread) -------------------------------------------------------

    def ack(self, acks: Iterable[Ack]) -> int:
        """Acknowledge messages on the connection that delivered them; return how many were
        stale (their connection is gone: the broker delivers them again or has forgotten)."""
        stale = 0
        with self._lock:
            gen, up, client = self._generation, self._connected, self._client
            for a in acks:
                if up and a.generation == gen:
                    client.ack(a.mid, a.qos)
                else:
                    stale += 1
        return stale

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Queue a publish (paho keeps QoS 1 messages across a reconnect and sends them
        again)."""
        with self._lock:
            self._out_count += 1
            client = self._client
        client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def outstanding(self) -> int:
        """Publishes queued and not yet completed."""
        return self._out_count - self._done_count

    def flush(self, timeout: float) -> bool:
        """Wait until every publish so far has completed; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._done_count >= self._out_count:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stop(self) -> None:
        """Disconnect (acks already queued are sent first) and end the network thread. The
        session persists in the broker for ``session_expiry`` seconds."""
        self._stopped = True
        self._client.disconnect()
        self._client.loop_stop()
