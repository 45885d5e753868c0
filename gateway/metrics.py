"""The gateway's Prometheus metrics (``--metrics-listen HOST:PORT``), served by
``prometheus_client`` like every other pak service's.

The numbers are the health payload's (:mod:`gateway.health`): the core thread builds it every
``--health-every`` seconds and hands it to :meth:`GatewayMetrics.update`; a scrape reads that
snapshot and never touches the spool (whose connection belongs to the core thread). Names:
``pak_gateway_<counter>_total`` for the cumulative counters (``frames_bad_total`` by
``reason``), gauges for what goes up and down; every sample carries ``gateway_id``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["GAUGE_COUNTERS", "GatewayMetrics"]

#: Entries of the health payload's ``counters`` that are levels, not running totals.
GAUGE_COUNTERS = frozenset({"sightings_open", "mqtt_inflight"})

_HELP = "from the gateway's health payload (see docs/gateway.md)"


class GatewayMetrics(Collector):
    """A collector over the latest health snapshot; empty until the first one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def update(self, health: dict[str, Any]) -> None:
        with self._lock:
            self._health = health

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; the server (``shutdown()``
        stops it). OSError when the address cannot be bound."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            health = self._health
        if not health:
            return
        gid = health["gateway_id"]

        def gauge(name: str, value: Any) -> Iterator[Metric]:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return
            g = GaugeMetricFamily(f"pak_gateway_{name}", _HELP, labels=["gateway_id"])
            g.add_metric([gid], value)
            yield g

        for k, v in health["counters"].items():
            if k == "frames_bad":
                c = CounterMetricFamily("pak_gateway_frames_bad", _HELP,
                                        labels=["gateway_id", "reason"])
                for reason, n in v.items():
                    c.add_metric([gid, reason], n)
                yield c
            elif k in GAUGE_COUNTERS:
                yield from gauge(k, v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                c = CounterMetricFamily(f"pak_gateway_{k}", _HELP, labels=["gateway_id"])
                c.add_metric([gid], v)
                yield c
        sp = health["spool"]
        yield from gauge("spool_depth", sp["depth"])
        yield from gauge("spool_oldest_age_seconds", sp["oldest_age_s"])
        yield from gauge("spool_bytes", sp.get("bytes"))
        yield from gauge("uptime_seconds", health["uptime_s"])
        yield from gauge("clock_suspect", int(health["clock"]["status"] == "suspect"))
        yield from gauge("link_up", int(health["link"]["state"] in ("connected", "listening")))
