"""Live alerts for the console: one MQTT subscription fanned out to every SSE client.

aiomqtt consumes ``{root}/alerts/#`` (QoS 1) in the API's event loop and puts each alert on
every connected client's bounded queue; a client too slow to keep up loses its oldest queued
alerts, never blocks the others, and is told so. Alert ids are stable, so a client that
reconnects dedupes on them. Reconnect policy: the caller's back-off (the API passes
``pak.mqtt.CENTRE_BACKOFF``: 1 s doubling to 5 s), forever, moving along the broker list; the
connection's settings (credentials, TLS, protocol) are the same as every paho client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson

from pak.broker_url import Brokers
from pak.errors import WireError
from pak.logs import event
from pak.mqtt import Backoff
from pak.wire.envelope import ENVELOPE_FIELDS, Refusals, VerifierLike, accept_control

__all__ = ["AlertHub"]

log = logging.getLogger("pak.api.alerts")


class AlertHub:
    def __init__(self, brokers: Brokers | None, topic_root: str, *, backoff: Backoff,
                 protocol: str = "5", queue_size: int = 500,
                 verifier: VerifierLike | None = None) -> None:
        self.brokers = brokers
        # Only alerts the centre's key signed reach the feed (unsigned: a loopback trial).
        self.verifier = verifier
        self.refusals = Refusals(log, "alerts")
        self.topic_root = topic_root
        self.protocol: Literal["5", "3.1.1"] = "3.1.1" if protocol == "3.1.1" else "5"
        self.backoff = backoff
        self.queue_size = queue_size
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.received = 0

    @property
    def mqtt_url(self) -> str | None:
        """The brokers for display (no password); None when the feed is off."""
        return None if self.brokers is None else self.brokers.redacted()

    async def start(self) -> None:
        if self.brokers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def publish_local(self, alert: dict[str, Any]) -> None:
        """Fan an alert out to the clients (also used when an alert changes via the API)."""
        for q in list(self._clients):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(alert)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        self._clients.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._clients.discard(q)

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
                    self.connected = True
                    delays = self.backoff.delays()
                    event(log, logging.INFO, "alert_feed_connected", topic=topic)
                    async for msg in client.messages:
                        raw = msg.payload
                        if not isinstance(raw, bytes | bytearray):
                            continue
                        try:
                            alert = orjson.loads(accept_control(bytes(raw), str(msg.topic),
                                                                self.verifier))
                        except WireError as e:
                            self.refusals.refuse(str(msg.topic), e)
                            continue
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(alert, dict):  # one alert shape on the feed
                            for k in ENVELOPE_FIELDS:
                                alert.pop(k, None)
                        if isinstance(alert, dict):
                            self.received += 1
                            self.publish_local(alert)
            except aiomqtt.MqttError as e:
                failures += 1
                wait = next(delays)
                if self.connected or failures == 1:  # a loss, or the first attempt failing
                    event(log, logging.WARNING,
                          "alert_feed_lost" if self.connected else "alert_feed_unreachable",
                          broker=args["hostname"], error=str(e), retry_s=wait)
                self.connected = False
                await asyncio.sleep(wait)
