"""The API's own Prometheus metrics, served with the process metrics on ``/metrics``.

A collector reads the live state when scraped (nothing to update on the request path):

* ``pak_api_alert_feed_connected``: 1 while the alert hub's MQTT subscription is up, 0 while it
  reconnects (the console's live alerts are then silent); absent when no broker is configured.
* ``pak_api_alert_feed_received_total``: alerts received from the broker.

It is registered once per process, by ``pak api`` (tests build many apps in one process).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.alert_hub import AlertHub

__all__ = ["AlertFeedCollector", "register"]


class AlertFeedCollector(Collector):
    def __init__(self, hub: AlertHub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        if self.hub.mqtt_url is None:
            return
        yield GaugeMetricFamily("pak_api_alert_feed_connected",
                                "1 while the live alert feed's broker subscription is up",
                                value=1.0 if self.hub.connected else 0.0)
        yield CounterMetricFamily("pak_api_alert_feed_received",
                                  "Alerts received from the broker by the live feed",
                                  value=float(self.hub.received))


def register(hub: AlertHub, registry: CollectorRegistry = REGISTRY) -> AlertFeedCollector:
    collector = AlertFeedCollector(hub)
    registry.register(collector)
    return collector
