"""Live alerts for the console: one MQTT subscription fanned out to every SSE client.

aiomqtt consumes ``{root}/alerts/#`` (QoS 1) in the API's event loop and puts each alert on
every connected client's bounded queue; a client too slow to keep up loses its oldest queued
alerts, never blocks the others, and is told so. Alert ids are stable, so a client that
reconnects dedupes on them. Reconnect policy: retry every ``retry_s`` seconds, forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from pak.broker_url import BrokerUrl
from pak.logs import event

__all__ = ["AlertHub"]

log = logging.getLogger("pak.api.alerts")


class AlertHub:
    def __init__(self, mqtt_url: str | None, topic_root: str, *, protocol: str = "5",
                 retry_s: float = 2.0, queue_size: int = 500) -> None:
        self.mqtt_url = mqtt_url
        self.topic_root = topic_root
        self.protocol = protocol
        self.retry_s = retry_s
        self.queue_size = queue_size
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.received = 0

    async def start(self) -> None:
        if self.mqtt_url and self._task is None:
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
        from aiomqtt import ProtocolVersion

        assert self.mqtt_url
        u = BrokerUrl.parse(self.mqtt_url)
        topic = f"{self.topic_root}/alerts/#"
        while True:
            try:
                async with aiomqtt.Client(
                    hostname=u.host, port=u.port, username=u.username, password=u.password,
                    tls_params=aiomqtt.TLSParameters() if u.tls else None,
                    protocol=ProtocolVersion.V5 if self.protocol == "5" else ProtocolVersion.V311,
                ) as client:
                    await client.subscribe(topic, qos=1)
                    self.connected = True
                    event(log, logging.INFO, "alert_feed_connected", topic=topic)
                    async for msg in client.messages:
                        raw = msg.payload
                        if not isinstance(raw, bytes | bytearray):
                            continue
                        try:
                            alert = orjson.loads(raw)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(alert, dict):
                            self.received += 1
                            self.publish_local(alert)
            except aiomqtt.MqttError as e:
                if self.connected:
                    event(log, logging.WARNING, "alert_feed_lost", error=str(e),
                          retry_s=self.retry_s)
                self.connected = False
                await asyncio.sleep(self.retry_s)
