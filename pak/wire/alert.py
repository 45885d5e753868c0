"""Codec of ``{root}/alerts/{kind}`` (centre to consumers, QoS 1; schemas/alert.json)::

    {"v": 1, "alert_id": "stolen_hit:E2003412...:HZ-1", "kind": "stolen_hit",
     "rev": 1764742502125,                      grows with each update of this alert id
     "at": "2026-11-28T06:15:02.125Z",          first raised
     "status": "new",                           null: unchanged (an update from the tracker)
     "tag_id": "E2003412...", "reader_id": "R-0412", "gateway_id": "gw-17",
     "sighting": {"gateway_id": "gw-17", "spool_id": "5f3a9c", "seq": 1042},   the latest cause
     "detail": {...}}                            what the kind carries

The same id is published again with newer ``detail`` (a stolen vehicle's next pass, the
direction once its sighting closed) or a new status (an officer acknowledged it), each time
with a larger ``rev``. Only officers move a status (the API); the tracker's updates of an
alert it raised earlier (a next hit, an enrichment) carry ``"status": null``, "unchanged": a
consumer keeps the status it holds, so an update never turns "acknowledged" back into "new".
Consumers dedupe on ``(alert_id, rev)`` and keep the highest rev per id.
A revision is the update's time in milliseconds since the epoch, raised by one when it would not
grow (:class:`AlertRevisions`), so every tracker instance and the API (whose status changes
use the stored ``updated_at``) agree without sharing a counter.

The live feed (MQTT and the API's SSE stream) carries exactly this message, whoever changed
the alert; the API's alert resources are :func:`stored_alert_json`: this message plus what
storage adds. The shapes of a reader and a sighting that alerts (and the API) carry are here
too: :func:`reader_json`, :func:`seen_json`, :func:`reader_record_json`,
:func:`sighting_record_json`. The direction of travel is computed by the caller (the tracker
owns the geometry) and passed in.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from pak.timefmt import format_time, to_millis, utcnow
from pak.types import Sighting
from pak.wire.common import (
    VERSION,
    dumps,
    is_int,
    is_valid_id,
    is_valid_tag,
    lenient_time,
    load_object,
    opt_time,
)
from pak.wire.envelope import ENVELOPE_FIELDS, control
from pak.wire.errors import BAD_ALERT, LOADING, WireError
from pak.wire.sightings import sighting_to_json

__all__ = [
    "ALERT_KINDS",
    "ALERT_STATUSES",
    "REASONS",
    "SCHEMA",
    "AlertMessage",
    "AlertRevisions",
    "ReaderRecord",
    "ReaderRef",
    "alert_json",
    "encode_alert",
    "parse_alert",
    "reader_json",
    "reader_record_json",
    "seen_json",
    "sighting_record_json",
    "stored_alert_json",
    "stored_alert_message",
    "stored_rev",
]

SCHEMA: Final = "alert"
REASONS: Final = (*LOADING, BAD_ALERT)
ALERT_KINDS: Final = ("stolen_hit", "unaccompanied", "tamper", "clone_suspect", "reader_silent",
                      "gateway_offline", "clock_skew", "low_battery")
ALERT_STATUSES: Final = ("new", "acknowledged", "dispatched", "closed")
MAX_ALERT_PAYLOAD: Final = 1 << 20
MAX_ALERT_ID: Final = 200
#: The fields of an alert message, in the order the codec writes them.
FIELDS: Final = ("v", "alert_id", "kind", "rev", "at", "status", "tag_id", "reader_id",
                 "gateway_id", "sighting", "detail")


class SightingRef(Protocol):
    @property
    def gateway_id(self) -> str: ...
    @property
    def spool_id(self) -> str: ...
    @property
    def seq(self) -> int: ...


class AlertLike(Protocol):
    """What an alert offers the codec (tracker.storage.base.Alert)."""

    @property
    def alert_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def tag_id(self) -> str | None: ...
    @property
    def reader_id(self) -> str | None: ...
    @property
    def gateway_id(self) -> str | None: ...
    @property
    def detail(self) -> dict[str, Any]: ...


class LiveAlertLike(AlertLike, Protocol):
    """An alert as the tracker raises it (tracker.storage.base.Alert): with its latest cause."""

    @property
    def sighting(self) -> SightingRef | None: ...


class HistoryLike(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def from_status(self) -> str | None: ...
    @property
    def to_status(self) -> str: ...
    @property
    def note(self) -> str | None: ...


class StoredAlertLike(AlertLike, Protocol):
    """An alert as storage returns it (tracker.storage.records.StoredAlert)."""

    @property
    def last_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def sightings(self) -> Sequence[SightingRef]: ...
    @property
    def history(self) -> Sequence[HistoryLike]: ...


def _ref(sid: SightingRef | None) -> dict[str, Any] | None:
    return None if sid is None else {"gateway_id": sid.gateway_id, "spool_id": sid.spool_id,
                                     "seq": sid.seq}


def _message(a: AlertLike, rev: int, sighting: SightingRef | None,
             with_status: bool = True) -> dict[str, Any]:
    return {
        "v": VERSION,
        "alert_id": a.alert_id,
        "kind": a.kind,
        "rev": rev,
        "at": format_time(a.at),
        "status": a.status if with_status else None,
        "tag_id": a.tag_id,
        "reader_id": a.reader_id,
        "gateway_id": a.gateway_id,
        "sighting": _ref(sighting),
        "detail": a.detail,
    }


def alert_json(alert: LiveAlertLike, rev: int, *, with_status: bool = True) -> dict[str, Any]:
    """The payload object of revision ``rev`` of an alert (``status`` null unless
    ``with_status``: a tracker's update, module doc)."""
    return _message(alert, rev, alert.sighting, with_status)


def encode_alert(alert: LiveAlertLike, rev: int, *, with_status: bool = True) -> bytes:
    """The payload of ``{root}/alerts/{kind}``: revision ``rev`` of ``alert`` (``status``
    null unless ``with_status``: a tracker's update, module doc)."""
    return control(dumps(_message(alert, rev, alert.sighting, with_status)))


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One alert message as a consumer reads it (``detail`` kept as sent)."""

    alert_id: str
    kind: str
    rev: int
    at: datetime
    status: str | None  # None: unchanged (a tracker's update)
    tag_id: str | None
    reader_id: str | None
    gateway_id: str | None
    sighting: tuple[str, str, int] | None
    detail: dict[str, Any]


def _opt(obj: dict[str, Any], key: str, ok: Callable[[object], bool]) -> Any:
    v = obj[key]
    if v is not None and not ok(v):
        raise WireError(BAD_ALERT, f"{key}={v!r}"[:200])
    return v


def parse_alert(payload: bytes) -> AlertMessage:
    """An alert message; WireError(bad_alert) when it breaks the schema's rules."""
    obj = load_object(payload, MAX_ALERT_PAYLOAD, version=True)
    if obj.keys() - ENVELOPE_FIELDS != set(FIELDS):
        raise WireError(BAD_ALERT, f"keys={sorted(obj)}"[:200])
    aid, kind, rev, status = obj["alert_id"], obj["kind"], obj["rev"], obj["status"]
    if not isinstance(aid, str) or not 1 <= len(aid) <= MAX_ALERT_ID:
        raise WireError(BAD_ALERT, "alert_id")
    if kind not in ALERT_KINDS or (status is not None and status not in ALERT_STATUSES):
        raise WireError(BAD_ALERT, f"kind={kind!r} status={status!r}"[:200])
    if not is_int(rev) or rev < 0:
        raise WireError(BAD_ALERT, f"rev={rev!r}"[:200])
    ref, detail = obj["sighting"], obj["detail"]
    if not isinstance(detail, dict):
        raise WireError(BAD_ALERT, "detail must be an object")
    sighting = None
    if ref is not None:
        if not isinstance(ref, dict):
            raise WireError(BAD_ALERT, "sighting must be an object or null")
        g, sp, seq = ref.get("gateway_id"), ref.get("spool_id"), ref.get("seq")
        if not (isinstance(g, str) and isinstance(sp, str) and isinstance(seq, int)
                and is_valid_id(g) and is_valid_id(sp) and is_int(seq) and seq >= 0):
            raise WireError(BAD_ALERT, f"sighting={ref!r}"[:200])
        sighting = (g, sp, seq)
    return AlertMessage(
        aid, kind, rev, lenient_time(obj, "at", BAD_ALERT), status,
        _opt(obj, "tag_id", is_valid_tag), _opt(obj, "reader_id", is_valid_id),
        _opt(obj, "gateway_id", is_valid_id), sighting, detail)


def stored_rev(a: StoredAlertLike) -> int:
    """The revision of a stored alert: its last change, in milliseconds."""
    return to_millis(a.updated_at)


def stored_alert_message(a: StoredAlertLike) -> dict[str, Any]:
    """A stored alert as the alert message (what the live feed sends after a status change)."""
    last = a.sightings[-1] if a.sightings else None
    return _message(a, stored_rev(a), last)


def stored_alert_json(a: StoredAlertLike) -> dict[str, Any]:
    """A stored alert as the API shows it: the alert message plus what storage adds (the
    latest hit, every sighting that hit it, and its status history: who moved it, when)."""
    out = stored_alert_message(a)
    out["last_at"] = format_time(a.last_at)
    out["updated_at"] = format_time(a.updated_at)
    out["sightings"] = [[s.gateway_id, s.spool_id, s.seq] for s in a.sightings]
    out["history"] = [{"at": opt_time(h.at), "actor": h.actor, "from": h.from_status,
                       "to": h.to_status, "note": h.note} for h in a.history]
    return out


class AlertRevisions:
    """The next ``rev`` of each alert id one producer publishes: the clock's milliseconds,
    or one more than this id's last revision when the clock has not moved past it. Remembers
    the newest ``size`` ids (an id forgotten restarts from the clock, which has moved on).
    Thread-safe: the tracker's hit lane and its bulk lane publish the same alert ids."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow, size: int = 100_000) -> None:
        self._clock = clock
        self._size = size
        self._last: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def next(self, alert_id: str) -> int:
        rev = to_millis(self._clock())
        with self._lock:
            prev = self._last.pop(alert_id, None)
            if prev is not None and rev <= prev:
                rev = prev + 1
            self._last[alert_id] = rev
            if len(self._last) > self._size:
                self._last.popitem(last=False)
        return rev


# --- what alerts and the API carry: a reader, a sighting ------------------------------------

class ReaderLike(Protocol):
    """A reader record (tracker.storage.records.Reader)."""

    @property
    def reader_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def bearings(self) -> Mapping[int, float]: ...
    @property
    def timezone(self) -> str | None: ...


Direction = dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ReaderRef:
    """A reader as an alert names it (nulls when the registry does not know it)."""

    reader_id: str
    name: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class ReaderRecord(ReaderRef):
    """A reader as the API lists it (the response model of ``/api/v1/readers``): the alert's
    reader plus its antenna bearings (by antenna number, as text) and its clock's zone."""

    bearings: dict[str, float]
    timezone: str | None


def reader_json(reader_id: str, reader: ReaderLike | None) -> dict[str, Any]:
    """:class:`ReaderRef` as JSON."""
    if reader is None:
        return asdict(ReaderRef(reader_id, None, None, None))
    return asdict(ReaderRef(reader_id, reader.name, reader.latitude, reader.longitude))


def reader_record_json(r: ReaderLike) -> dict[str, Any]:
    """:class:`ReaderRecord` as JSON."""
    return asdict(ReaderRecord(r.reader_id, r.name, r.latitude, r.longitude,
                               {str(k): v for k, v in r.bearings.items()}, r.timezone))


def seen_json(s: Sighting, direction: Direction) -> dict[str, Any]:
    """Where and when a tag was, and which way it went (an alert's ``seen``)."""
    return {"state": s.state, "first_seen": format_time(s.first_seen),
            "last_seen": format_time(s.last_seen), "antennas": list(s.antennas),
            "reads": s.reads, "rssi_max_dbm": s.rssi_max_dbm, "direction": direction}


def sighting_record_json(s: Sighting, direction: Direction) -> dict[str, Any]:
    """A stored sighting as the API shows it: the wire's sighting object, its id and the
    direction of travel."""
    out = sighting_to_json(s)
    out["gateway_id"] = s.gateway_id
    out["spool_id"] = s.spool_id
    out["direction"] = direction
    return out
