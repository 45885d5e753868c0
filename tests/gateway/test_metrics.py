"""The gateway's Prometheus collector: the health snapshot's numbers under stable names."""

from __future__ import annotations

from typing import Any

from gateway.metrics import GatewayMetrics


def _health(reads: int) -> dict[str, Any]:
    return {
        "v": 1, "gateway_id": "gw-9", "at": "x", "uptime_s": 12.5, "readers": ["rd"],
        "link": {"state": "connected"}, "clock": {"status": "suspect"},
        "counters": {"reads": reads, "frames_bad": {"bad_crc": 2, "short": 1},
                     "sightings_open": 4, "mqtt_inflight": 0},
        "spool": {"spool_id": "s", "depth": 7, "oldest_age_s": None, "bytes": 4096,
                  "dropped_total": 0},
    }


def test_nothing_before_the_first_snapshot_then_the_latest() -> None:
    m = GatewayMetrics()
    assert m.registry.get_sample_value("pak_gateway_reads_total", {"gateway_id": "gw-9"}) \
        is None
    m.update(_health(40))
    m.update(_health(41))
    get = m.registry.get_sample_value
    gw = {"gateway_id": "gw-9"}
    assert get("pak_gateway_reads_total", gw) == 41
    assert get("pak_gateway_frames_bad_total", {**gw, "reason": "bad_crc"}) == 2
    assert get("pak_gateway_frames_bad_total", {**gw, "reason": "short"}) == 1
    assert get("pak_gateway_sightings_open", gw) == 4  # a gauge, no _total
    assert get("pak_gateway_sightings_open_total", gw) is None
    assert get("pak_gateway_spool_depth", gw) == 7
    assert get("pak_gateway_spool_bytes", gw) == 4096
    assert get("pak_gateway_spool_oldest_age_seconds", gw) is None  # no backlog: no sample
    assert get("pak_gateway_clock_suspect", gw) == 1
    assert get("pak_gateway_link_up", gw) == 1
    assert get("pak_gateway_uptime_seconds", gw) == 12.5
