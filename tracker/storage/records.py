"""The plain records the storage keeps besides sightings: readers, vehicles, which tag a vehicle
carried when, the watchlist, stored alerts with their status history, gateways, the audit log.

Every query of :class:`tracker.storage.base.Storage` returns these (frozen dataclasses, aware
UTC datetimes), never database rows, so callers do not depend on the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, get_args

from pak.types import SightingId

__all__ = [
    "ALERT_STATUSES",
    "WATCH_STATUSES",
    "AlertStatus",
    "AlertStatusChange",
    "AuditEntry",
    "GatewayRecord",
    "Reader",
    "StoredAlert",
    "TagAssignment",
    "TagPass",
    "Vehicle",
    "WatchEntry",
    "WatchStatus",
]

AlertStatus = Literal["new", "acknowledged", "dispatched", "closed"]
#: An alert's lifecycle, in order. Storage accepts any of them in set_alert_status: which step
#: may follow which is the alert engine's rule, not the database's.
ALERT_STATUSES: Final[tuple[str, ...]] = get_args(AlertStatus)

WatchStatus = Literal["active", "recovered", "withdrawn"]
WATCH_STATUSES: Final[tuple[str, ...]] = get_args(WatchStatus)


@dataclass(frozen=True, slots=True)
class Reader:
    """A reader beside the road. ``bearings`` maps an antenna number (1-based) to the compass
    bearing in degrees it faces, so the direction of travel can be told from antenna order.
    ``timezone`` is the IANA zone of the reader's own clock (None: the reader sends UTC)."""

    reader_id: str
    name: str
    latitude: float
    longitude: float
    bearings: dict[int, float] = field(default_factory=dict)
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle. ``key_tag_id`` is the owner's key tag (paired for the
    ``unaccompanied`` check, which runs only when ``unaccompanied_check`` is set)."""

    vehicle_id: str
    plate: str
    owner: str | None = None
    kind: str | None = None
    colour: str | None = None
    key_tag_id: str | None = None
    unaccompanied_check: bool = False


@dataclass(frozen=True, slots=True)
class TagAssignment:
    """Tag ``tag_id`` was on vehicle ``vehicle_id`` from ``valid_from`` (inclusive) until
    ``valid_to`` (exclusive; None: still is). Tags are re-issued, so a tag has a history."""

    tag_id: str
    vehicle_id: str
    valid_from: datetime
    valid_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One stolen-vehicle report: a tag under a case number. ``status`` leaves ``active`` when
    the vehicle is recovered or the report withdrawn; ``changed_at`` is the last change.
    One row per (tag_id, case_no): a tag stolen twice has two cases."""

    tag_id: str
    case_no: str
    reporter: str | None
    reported_at: datetime
    note: str
    status: WatchStatus
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class AlertStatusChange:
    """One step of an alert's lifecycle: who moved it from ``from_status`` to ``to_status``."""

    at: datetime
    actor: str
    from_status: str
    to_status: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the database holds it.

    ``at`` is when it was first raised, ``last_at`` the latest hit folded into it (repeated
    hits on one alert id update the row: location and detail follow the latest hit),
    ``updated_at`` the latest change of any kind. ``sightings`` are every sighting id that
    hit it, oldest first; ``history`` its status changes, oldest first."""

    alert_id: str
    kind: str
    at: datetime
    last_at: datetime
    updated_at: datetime
    status: AlertStatus
    tag_id: str | None
    reader_id: str | None
    gateway_id: str | None
    detail: dict[str, Any]
    sightings: tuple[SightingId, ...] = ()
    history: tuple[AlertStatusChange, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    """What the centre last heard from a gateway: its retained state and its last health."""

    gateway_id: str
    state: str | None
    state_at: datetime | None
    health: dict[str, Any] | None
    health_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action (a trail query, a watchlist change...): who, what, why, with what."""

    id: int
    at: datetime
    actor: str
    action: str
    reason: str
    params: dict[str, Any]
    role: str | None = None  # the caller's role and address (None before migration 0007)
    client: str | None = None
    prev_hash: str | None = None  # the hash chain (tracker/storage/audit_chain.py)
    hash: str | None = None


class TagPass(NamedTuple):
    """Where and when a tag was, and which sighting says so: what a clone check needs of a
    tag's history (seven columns read, not a whole Sighting: thousands a second)."""

    tag_id: str
    reader_id: str
    first_seen: datetime
    last_seen: datetime
    gateway_id: str
    spool_id: str
    seq: int

    @property
    def sid(self) -> SightingId:
        return SightingId(self.gateway_id, self.spool_id, self.seq)
