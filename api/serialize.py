"""Records to JSON for the API (one place, so every router speaks the same shapes).

The shapes themselves are the wire's (:mod:`pak.wire.alert`, :mod:`pak.wire.watchlist`):
what the API shows of an alert, a reader, a sighting or a watchlist entry is what the alert
feed and ``pak watchlist`` show. Here only what needs the tracker: the direction of travel.
"""

from __future__ import annotations

from typing import Any

from pak.timefmt import format_time
from pak.types import Sighting
from pak.wire.alert import (
    reader_record_json,
    sighting_record_json,
    stored_alert_json,
    stored_alert_message,
)
from pak.wire.watchlist import watch_entry_json
from tracker.storage.records import GatewayRecord, Reader, StoredAlert, WatchEntry
from tracker.trails.trail import direction_of_travel

__all__ = ["alert_json", "alert_message", "gateway_json", "reader_json", "sighting_json",
           "watch_json"]


def _t(t: Any) -> str | None:
    return None if t is None else format_time(t)


def reader_json(r: Reader) -> dict[str, Any]:
    return reader_record_json(r)


def sighting_json(s: Sighting, reader: Reader | None = None) -> dict[str, Any]:
    return sighting_record_json(
        s, direction_of_travel(s.antennas, reader.bearings if reader else None))


def alert_json(a: StoredAlert) -> dict[str, Any]:
    """An alert resource: the alert message plus what storage keeps (history, sightings)."""
    return stored_alert_json(a)


def alert_message(a: StoredAlert) -> dict[str, Any]:
    """A stored alert as the live feed carries it: the wire's alert message, nothing more."""
    return stored_alert_message(a)


def watch_json(w: WatchEntry) -> dict[str, Any]:
    return watch_entry_json(w)


def gateway_json(g: GatewayRecord) -> dict[str, Any]:
    return {"gateway_id": g.gateway_id, "state": g.state, "state_at": _t(g.state_at),
            "health": g.health, "health_at": _t(g.health_at)}
