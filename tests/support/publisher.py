"""A test publisher that behaves like the gateways towards the centre: it publishes sightings
messages (QoS 1), listens to the receipts of its gateway ids, and republishes, after a
timeout, every sighting form no receipt has covered yet. A ``closed`` receipt of a seq settles
both of its forms; an ``open`` receipt settles only the open form (pak.wire.Receipt).

One paho client plays several gateways (a test convenience; each real gateway has its own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pak.broker_url import BrokerUrl
from pak.errors import WireError
from pak.types import Sighting
from pak.wire.receipts import Receipt, parse_receipts
from pak.wire.sightings import encode_sightings
from pak.wire.topics import Topics
from tests.support.streams import Message
from tests.support.wait import eventually

Key = tuple[str, str, int, str]  # gateway, spool, seq, state


class RepublishingPublisher:
    def __init__(self, url: str, root: str, *, republish_after: float = 1.5,
                 client_id: str = "test-gateways") -> None:
        self.topics = Topics(root)
        self.broker = BrokerUrl.parse(url)
        self.republish_after = republish_after
        self.pending: dict[Key, Sighting] = {}
        self.sent_at: dict[Key, float] = {}
        self.receipts: list[Receipt] = []
        self.bad_receipts = 0
        self.republished = 0
        self.republished_sightings = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(1000)
        c.reconnect_delay_set(1, 2)
        c.on_connect = self._on_connect
        # up once the broker has answered the receipts subscription (its SUBACK): a receipt
        # for something published before that would be lost
        c.on_subscribe = lambda *a: self._connected.set()
        c.on_disconnect = lambda *a: self._connected.clear()
        c.on_message = self._on_message
        self.client = c
        self._thread = threading.Thread(target=self._republisher, daemon=True)

    def __enter__(self) -> RepublishingPublisher:
        self.client.connect_async(self.broker.host, self.broker.port, 30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("test publisher cannot connect")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, u: object, flags: object, rc: object,
                    props: object) -> None:
        client.subscribe(self.topics.all_gateways("receipts"), qos=1)

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            r = parse_receipts(bytes(msg.payload))
        except WireError:
            self.bad_receipts += 1
            return
        with self._lock:
            self.receipts.append(r)
            for a, b in r.closed:
                for seq in range(a, b + 1):
                    self.pending.pop((r.gateway_id, r.spool_id, seq, "open"), None)
                    self.pending.pop((r.gateway_id, r.spool_id, seq, "closed"), None)
            for a, b in r.open:
                for seq in range(a, b + 1):
                    self.pending.pop((r.gateway_id, r.spool_id, seq, "open"), None)

    def publish(self, messages: Iterable[Message], *, rate: float | None = None) -> None:
        """Publish in order; ``rate`` messages per second (None: as fast as paho takes them)."""
        t0 = time.monotonic()
        for i, m in enumerate(messages):
            now = time.monotonic()
            with self._lock:
                for s in m.sightings:
                    k = (s.gateway_id, s.spool_id, s.seq, s.state)
                    self.pending[k] = s
                    self.sent_at[k] = now
            self.client.publish(self.topics.sightings(m.gateway_id), m.payload(), qos=1)
            if rate:
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _republisher(self) -> None:
        while not self._stop.wait(0.2):
            if not self._connected.is_set():
                continue  # paho would only queue them; a gateway waits for its broker too
            now = time.monotonic()
            with self._lock:
                due = [(k, s) for k, s in self.pending.items()
                       if now - self.sent_at[k] >= self.republish_after]
                for k, _ in due:
                    self.sent_at[k] = now
            by_spool: dict[tuple[str, str], list[Sighting]] = {}
            for k, s in due:
                by_spool.setdefault((k[0], k[1]), []).append(s)
            for (gid, sid), items in by_spool.items():
                for i in range(0, len(items), 20):
                    payload = encode_sightings(gid, sid, items[i:i + 20], datetime.now(UTC))
                    self.client.publish(self.topics.sightings(gid), payload, qos=1)
                    self.republished += 1
                    self.republished_sightings += len(items[i:i + 20])

    def unreceipted(self) -> int:
        with self._lock:
            return len(self.pending)

    def wait_receipted(self, timeout: float) -> None:
        eventually(lambda: not self.unreceipted(), timeout, "every sighting form receipted",
                   step=0.05, detail=lambda: f"{self.unreceipted()} never receipted "
                                             f"(republished {self.republished} messages)")
