"""Live alerts for the console: one MQTT subscription fanned out to every SSE client.

aiomqtt consumes ``{root}/alerts/#`` (QoS 1) in the API's event loop and puts each alert on
every connected client's bounded queue; a client too slow to keep up loses its oldest queued
alerts, never blocks the others (it catches up by replay from storage on reconnect).

Invariants:

* An alert is fanned out once per (``alert_id``, ``rev``): the hub remembers the newest pairs
  it has sent, so a status change made on this instance (sent to local clients at once and
  published on the broker for every other instance) is not sent twice when its echo returns.
* Every client is told the broker's state (``live`` true/false) when it subscribes and on
  every change, so the console shows "live" only while alerts can really reach it.
* A status change is published on the broker as the alert message of that alert
  (:func:`pak.wire.alert.stored_alert_message`): every API instance's hub fans out what it
  receives, whichever instance made the change.

Reconnect policy: the caller's back-off (the API passes ``pak.mqtt.CENTRE_BACKOFF``: 1 s
doubling to 5 s), forever, moving along the broker list; the connection's settings
(credentials, TLS, protocol) are the same as every paho client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from pak.broker_url import Brokers
from pak.errors import WireError
from pak.logs import event
from pak.mqtt import Backoff
from pak.wire.envelope import (
    ENVELOPE_FIELDS,
    Refusals,
    SignerLike,
    VerifierLike,
    accept_control,
    control,
)

__all__ = ["AlertHub", "FeedItem", "Subscription"]

log = logging.getLogger("pak.api.alerts")

#: What a client's queue carries: ("alert", message) or ("state", {"live": bool}).
FeedItem = tuple[Literal["alert", "state"], dict[str, Any]]


@dataclass(eq=False)
class Subscription:
    """One client's queue; ``dropped`` counts alerts lost to a full queue."""

    queue: asyncio.Queue[FeedItem]
    dropped: int = field(default=0)

    def put(self, item: FeedItem) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.dropped += 1
        self.queue.put_nowait(item)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        """The next alert (state changes skipped): for consumers other than the SSE route."""
        while True:
            kind, body = await self.queue.get()
            if kind == "alert":
                return body


class AlertHub:
    def __init__(self, brokers: Brokers | None, topic_root: str, *, backoff: Backoff,
                 protocol: str = "5", queue_size: int = 500, seen_size: int = 10_000,
                 verifier: VerifierLike | None = None,
                 signer: SignerLike | None = None) -> None:
        self.brokers = brokers
        # Only alerts the centre's key signed reach the feed (unsigned: a loopback trial);
        # the changes made here go out signed by ``signer``.
        self.verifier = verifier
        self.signer = signer
        self.refusals = Refusals(log, "alerts")
        self.topic_root = topic_root
        self.protocol: Literal["5", "3.1.1"] = "3.1.1" if protocol == "3.1.1" else "5"
        self.backoff = backoff
        self.queue_size = queue_size
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._seen_size = seen_size
        self._clients: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None  # the aiomqtt client while connected
        self.connected = False
        self.received = 0

    @property
    def mqtt_url(self) -> str | None:
        """The brokers for display (no password); None when the feed is off."""
        return None if self.brokers is None else self.brokers.redacted()

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        if self.brokers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish_local(self, alert: dict[str, Any]) -> bool:
        """Fan an alert out to this instance's clients, once per (alert_id, rev); False
        when that revision was sent already."""
        aid, rev = alert.get("alert_id"), alert.get("rev")
        if isinstance(aid, str) and isinstance(rev, int):
            if (aid, rev) in self._seen:
                return False
            self._seen[(aid, rev)] = None
            if len(self._seen) > self._seen_size:
                self._seen.popitem(last=False)
        for sub in list(self._clients):
            sub.put(("alert", alert))
        return True

    async def announce(self, alert: dict[str, Any]) -> None:
        """A change made here (a status change): to this instance's clients at once and, on
        the broker, to every other instance's. Without a broker the other instances' clients
        get it by replay when they reconnect."""
        self.publish_local(alert)
        client = self._client
        if client is None:
            return
        topic = f"{self.topic_root}/alerts/{alert['kind']}"
        try:
            await client.publish(topic, control(orjson.dumps(alert), self.signer, topic), qos=1)
        except Exception as e:  # the broker may be going away: log it, go on
            event(log, logging.WARNING, "alert_change_not_published", topic=topic,
                  error=str(e))

    def subscribe(self) -> Subscription:
        """A new client: its queue starts with the broker's state."""
        sub = Subscription(asyncio.Queue(self.queue_size))
        sub.put(("state", {"live": self.connected}))
        self._clients.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._clients.discard(sub)

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            for sub in list(self._clients):
                sub.put(("state", {"live": up}))

    async def _run(self) -> None:
        import aiomqtt

        from pak.mqtt import aiomqtt_args

        assert self.brokers
        topic = f"{self.topic_root}/alerts/#"
        delays = self.backoff.delays()
        failures = 0  # also which broker is next: a failure moves along the list
        while True:
            args = aiomqtt_args(self.brokers, failures, protocol=self.protocol)
            try:
                async with aiomqtt.Client(**args) as client:
                    await client.subscribe(topic, qos=1)
                    self._client = client
                    self._set_connected(True)
                    delays = self.backoff.delays()
                    event(log, logging.INFO, "alert_feed_connected", topic=topic)
                    async for msg in client.messages:
                        self._receive(msg.payload, str(msg.topic))
            except aiomqtt.MqttError as e:
                self._client = None
                failures += 1
                wait = next(delays)
                if self.connected or failures == 1:  # a loss, or the first attempt failing
                    event(log, logging.WARNING,
                          "alert_feed_lost" if self.connected else "alert_feed_unreachable",
                          broker=args["hostname"], error=str(e), retry_s=wait)
                self._set_connected(False)
                await asyncio.sleep(wait)
            finally:
                self._client = None

    def _receive(self, raw: object, topic: str) -> None:
        if not isinstance(raw, bytes | bytearray):
            return
        try:
            alert = orjson.loads(accept_control(bytes(raw), topic, self.verifier))
        except WireError as e:  # unsigned, forged or replayed from another topic
            self.refusals.refuse(topic, e)
            return
        except orjson.JSONDecodeError:
            return
        if isinstance(alert, dict):
            for k in ENVELOPE_FIELDS:  # one alert shape on the feed
                alert.pop(k, None)
            self.received += 1
            self.publish_local(alert)
