"""Records to JSON for the API (one place, so every router speaks the same shapes)."""

from __future__ import annotations

from typing import Any

from pak.timefmt import format_time
from pak.types import Sighting
from pak.wire import sighting_to_json
from tracker.storage.records import GatewayRecord, Reader, StoredAlert, WatchEntry
from tracker.trails.trail import direction_of_travel

__all__ = ["alert_json", "gateway_json", "reader_json", "sighting_json", "watch_json"]


def _t(t: Any) -> str | None:
    return None if t is None else format_time(t)


def reader_json(r: Reader) -> dict[str, Any]:
    return {"reader_id": r.reader_id, "name": r.name, "latitude": r.latitude,
            "longitude": r.longitude, "bearings": {str(k): v for k, v in r.bearings.items()},
            "timezone": r.timezone}


def sighting_json(s: Sighting, reader: Reader | None = None) -> dict[str, Any]:
    out = sighting_to_json(s)
    out["gateway_id"] = s.gateway_id
    out["spool_id"] = s.spool_id
    out["direction"] = direction_of_travel(s.antennas, reader.bearings if reader else None)
    return out


def alert_json(a: StoredAlert) -> dict[str, Any]:
    return {
        "v": 1, "alert_id": a.alert_id, "kind": a.kind, "at": _t(a.at), "last_at": _t(a.last_at),
        "updated_at": _t(a.updated_at), "status": a.status, "tag_id": a.tag_id,
        "reader_id": a.reader_id, "gateway_id": a.gateway_id, "detail": a.detail,
        "sightings": [[s.gateway_id, s.spool_id, s.seq] for s in a.sightings],
        "history": [{"at": _t(h.at), "actor": h.actor, "from": h.from_status,
                     "to": h.to_status, "note": h.note} for h in a.history],
    }


def watch_json(w: WatchEntry) -> dict[str, Any]:
    return {"tag_id": w.tag_id, "case_no": w.case_no, "reporter": w.reporter,
            "reported_at": _t(w.reported_at), "note": w.note, "status": w.status,
            "changed_at": _t(w.changed_at)}


def gateway_json(g: GatewayRecord) -> dict[str, Any]:
    return {"gateway_id": g.gateway_id, "state": g.state, "state_at": _t(g.state_at),
            "health": g.health, "health_at": _t(g.health_at)}
