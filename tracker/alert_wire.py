"""Alerts on the wire: the payload of ``{root}/alerts/{kind}`` (pak/schemas/alert.json).

::

    {"v": 1, "alert_id": "stolen_hit:gw-17:5f3a9c:1042", "kind": "stolen_hit",
     "at": "2026-11-28T06:15:02.125Z",          first raised
     "status": "new",
     "tag_id": "E2003412...", "reader_id": "R-0412", "gateway_id": "gw-17",
     "sighting": {"gateway_id": "gw-17", "spool_id": "5f3a9c", "seq": 1042},   the latest cause
     "detail": {...}}                            what the kind carries (tracker/alerts.py)

The same id may be published again with newer ``detail`` (a stolen vehicle's next pass, the
direction once its sighting closed): consumers keep one alert per id and show the latest.
"""

from __future__ import annotations

from typing import Any

from pak.timefmt import format_time
from pak.wire import dumps
from tracker.storage.base import Alert
from tracker.storage.records import StoredAlert

__all__ = ["alert_json", "encode_alert", "stored_alert_json"]


def alert_json(alert: Alert) -> dict[str, Any]:
    """The payload object of one alert."""
    sid = alert.sighting
    return {
        "v": 1,
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "at": format_time(alert.at),
        "status": alert.status,
        "tag_id": alert.tag_id,
        "reader_id": alert.reader_id,
        "gateway_id": alert.gateway_id,
        "sighting": None if sid is None else {"gateway_id": sid.gateway_id,
                                              "spool_id": sid.spool_id, "seq": sid.seq},
        "detail": alert.detail,
    }


def encode_alert(alert: Alert) -> bytes:
    return dumps(alert_json(alert))


def stored_alert_json(a: StoredAlert) -> dict[str, Any]:
    """A stored alert as the payload, plus what storage adds: the latest hit, every sighting
    that hit it, and its status history (who moved it, when)."""
    last = a.sightings[-1] if a.sightings else None
    return {
        "v": 1,
        "alert_id": a.alert_id,
        "kind": a.kind,
        "at": format_time(a.at),
        "status": a.status,
        "tag_id": a.tag_id,
        "reader_id": a.reader_id,
        "gateway_id": a.gateway_id,
        "sighting": None if last is None else {"gateway_id": last.gateway_id,
                                               "spool_id": last.spool_id, "seq": last.seq},
        "detail": a.detail,
        "last_at": format_time(a.last_at),
        "updated_at": format_time(a.updated_at),
        "sightings": [[s.gateway_id, s.spool_id, s.seq] for s in a.sightings],
        "history": [{"at": format_time(h.at), "actor": h.actor, "from": h.from_status,
                     "to": h.to_status, "note": h.note} for h in a.history],
    }
