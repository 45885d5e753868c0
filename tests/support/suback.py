"""The SUBACK the tracker's consumer receives, observed through paho's on_subscribe.

The consumer subscribes in its on_connect and has no signal of its own for the broker's
answer; a test that publishes right after start-up waits for that answer, or the broker drops
what arrives before any subscription matches. `Subacks` chains paho's on_subscribe on the
consumer's client: the one it has now and any it builds later (the MQTT 3.1.1 fallback makes
a new client). Install it before ``start()``. It reaches the consumer's private client, this
one place only.
"""

from __future__ import annotations

import threading
from typing import Any

from ingest.consumer import MqttConsumer
from tests.support.wait import eventually


class Subacks:
    def __init__(self, consumer: MqttConsumer) -> None:
        self.count = 0
        self._lock = threading.Lock()
        make = consumer._make_client

        def make_watched(protocol: Any) -> Any:
            return self._watch(make(protocol))

        consumer._make_client = make_watched  # type: ignore[method-assign]
        self._watch(consumer._client)

    def _watch(self, client: Any) -> Any:
        before = client.on_subscribe

        def on_subscribe(*args: Any) -> None:
            with self._lock:
                self.count += 1
            if before is not None:
                before(*args)

        client.on_subscribe = on_subscribe
        return client

    def wait(self, timeout: float, count: int = 1) -> None:
        eventually(lambda: self.count >= count, timeout, f"SUBACK {count} of the consumer")
