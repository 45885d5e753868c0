"""The gateway's health payload (``{root}/gw/{id}/health``, pak/schemas/health.json),
built from a snapshot of the runtime's counters: the link's status, the smoother's closes,
the publisher's connection and the spool. Counters are cumulative since the process started.

Pure but for the spool's reads (depth, oldest sighting, bytes): call it on the core thread,
which owns the spool's connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pak.timefmt import format_time

if TYPE_CHECKING:
    from gateway.clock import ClockStatus
    from gateway.publisher import PublisherStats
    from gateway.smoother import SmootherStats
    from gateway.spool import Spool

__all__ = ["health_payload"]


def health_payload(
    *,
    gateway_id: str,
    now: datetime,
    uptime_s: float,
    readers: Sequence[str],
    open_now: int,
    link_status: Mapping[str, Any],
    clock: ClockStatus,
    totals: Mapping[str, int],
    smoother: SmootherStats,
    publisher: PublisherStats,
    inflight: int,
    spool: Spool,
    max_duration_s: float | None = None,
    exit_after_s: float | None = None,
) -> dict[str, Any]:
    """One health message (a dict ready for ``pak.wire.dumps``). ``max_duration_s`` and
    ``exit_after_s`` (the smoother's): how long after its first_seen a spooled sighting is
    closed at the latest, so the centre can close one whose closed form was dropped."""
    # the names the payload was written with when it lived in Gateway.health()
    ls, gw_counters, pub = link_status, totals, publisher
    link: dict[str, Any] = {"state": ls.get("state", "down")}
    if ls.get("url"):
        link["url"] = str(ls["url"])
    since = ls.get("since")
    if isinstance(since, datetime):
        link["since"] = format_time(since)
    if "stations" in ls:
        link["stations"] = [str(x) for x in ls["stations"]]
    oldest = spool.oldest_first_seen()
    st = smoother
    counters: dict[str, Any] = {
        "frames_ok": int(ls.get("frames_ok", 0)),
        "frames_bad": {str(k): int(v) for k, v in dict(ls.get("frames_bad", {})).items()},
        "garbage_bytes": int(ls.get("garbage_bytes", 0)),
        "reads": gw_counters["reads"],
        "sightings": gw_counters["sightings"],
        "dropped": gw_counters["dropped"],
        "reconnects": int(ls.get("reconnects", 0)),
        "published": gw_counters["published"],
        "republished": gw_counters["republished"],
        "receipted": gw_counters["receipted"],
        "receipted_open": gw_counters["receipted_open"],
        "receipts": gw_counters["receipts"],
        "echoes": int(ls.get("echoes", 0)),
        "sightings_open": open_now,
        "closed_exit": st.closed_exit,
        "closed_out_of_range": st.closed_out_of_range,
        "closed_max_duration": st.closed_max_duration,
        "closed_evicted": st.closed_evicted,
        "mqtt_reconnects": max(0, pub.connects - 1),
        "mqtt_inflight": inflight,
        "publish_messages": gw_counters["publish_messages"],
        "core_wakeups": gw_counters["core_wakeups"],
        "receipts_refused": pub.receipts_bad + spool.stats.receipts_foreign,
        "spool_reservation_waits": spool.stats.reservation_waits,
    }
    return {
        "v": 1,
        "gateway_id": gateway_id,
        "at": format_time(now),
        "uptime_s": round(uptime_s, 3),
        "readers": list(readers),
        "link": link,
        "clock": clock.to_json(),
        "counters": counters,
        "spool": {
            "spool_id": spool.spool_id,
            "depth": spool.depth(),
            "oldest_age_s": None if oldest is None else round(
                max(0.0, now.timestamp() - oldest), 3),
            "bytes": spool.bytes_used(),
            "dropped_total": spool.stats.dropped_total,
            "oldest_dropped": None if spool.oldest_dropped is None else format_time(
                datetime.fromtimestamp(spool.oldest_dropped, UTC)),
            **({} if max_duration_s is None else {"max_duration_s": max_duration_s}),
            **({} if exit_after_s is None else {"exit_after_s": exit_after_s}),
        },
    }
