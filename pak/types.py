"""The value types every component shares: TagRead, StampedRead, Sighting and its merge rule.

A :class:`TagRead` is what a driver decodes from one reader report (pure: no clock, no ids of
the deployment). The gateway stamps it (:class:`StampedRead`) with its own id, the reader id and
its UTC clock, folds reads into :class:`Sighting` objects, and publishes those. Storage keeps one
row per sighting id; :func:`merge_sightings` is the one merge rule, mirrored by the SQL upserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

__all__ = [
    "SIGHTING_FLAGS",
    "STATES",
    "TAG_KINDS",
    "Sighting",
    "SightingFlag",
    "SightingId",
    "SightingState",
    "StampedRead",
    "TagKind",
    "TagRead",
    "merge_sightings",
]

TagKind = Literal["epc", "active", "em4100"]
TAG_KINDS: tuple[str, ...] = get_args(TagKind)
SightingState = Literal["open", "closed"]
STATES: tuple[str, ...] = get_args(SightingState)
SightingFlag = Literal["key", "low_battery", "out_of_range", "tamper"]
SIGHTING_FLAGS: tuple[str, ...] = get_args(SightingFlag)


class TagRead(NamedTuple):
    """One decoded tag report, as the reader sent it.

    ``tag_id`` is upper-case hex without separators. ``antenna`` is 1-based. ``reader_time`` is
    the reader's own clock exactly as sent (naive: its zone is a deployment setting, applied by
    the gateway). Boolean fields are None where the protocol does not report them.

    A NamedTuple rather than a frozen dataclass: drivers build hundreds of thousands per second
    per core, and a tuple is built in a quarter of the time (measured: 0.55 us against 2.2 us).
    """

    driver: str
    tag_id: str
    tag_kind: TagKind
    raw: bytes
    tag_type: int | None = None
    antenna: int | None = None
    rssi_dbm: float | None = None
    rssi_raw: int | None = None
    reader_time: datetime | None = None
    low_battery: bool | None = None
    key: bool | None = None
    in_range: bool | None = None
    tamper: bool | None = None
    frequency_mhz: float | None = None
    pc: int | None = None

    def sighting_flags(self) -> frozenset[str]:
        """The sighting flags this read contributes (see ``SIGHTING_FLAGS``)."""
        out = set()
        if self.low_battery:
            out.add("low_battery")
        if self.key:
            out.add("key")
        if self.tamper:
            out.add("tamper")
        if self.in_range is False:
            out.add("out_of_range")
        return frozenset(out)

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``pak decode`` prints: always the core keys, protocol keys when set."""
        out: dict[str, Any] = {
            "driver": self.driver,
            "tag_id": self.tag_id,
            "tag_kind": self.tag_kind,
            "antenna": self.antenna,
            "rssi_dbm": self.rssi_dbm,
            "rssi_raw": self.rssi_raw,
        }
        optional: dict[str, Any] = {
            "tag_type": self.tag_type,
            "low_battery": self.low_battery,
            "key": self.key,
            "in_range": self.in_range,
            "tamper": self.tamper,
            "reader_time": self.reader_time.isoformat() if self.reader_time else None,
            "frequency_mhz": self.frequency_mhz,
            "pc": f"{self.pc:04X}" if self.pc is not None else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        out["raw"] = self.raw.hex().upper()
        return out


@dataclass(frozen=True, slots=True)
class StampedRead:
    """A TagRead with what the gateway knows: its id, the reader id, its own UTC time.

    ``reader_time`` is the reader's clock converted to UTC with the reader's zone (or None).
    """

    read: TagRead
    gateway_id: str
    reader_id: str
    seen_at: datetime
    reader_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class SightingId:
    gateway_id: str
    spool_id: str
    seq: int


class Sighting(NamedTuple):
    """One presence of one tag at one reader, from its first read to its last.

    ``gateway_id`` and ``spool_id`` travel in the message envelope on the wire; every other
    field is one key of the sighting object (pak/wire/schemas/sightings.json).

    A NamedTuple rather than a frozen dataclass, like :class:`TagRead`: the centre builds one
    per received sighting on its receive thread, and a frozen dataclass of 17 fields cost
    about six times as much to build as the tuple (measured: 6 us against 1 us on the
    development machine), the largest single item of ingest's profile (docs/ingest.md).
    """

    gateway_id: str
    spool_id: str
    seq: int
    state: SightingState
    tag_id: str
    tag_kind: TagKind
    reader_id: str
    first_seen: datetime
    last_seen: datetime
    reads: int
    tag_type: int | None = None
    antenna: int | None = None
    antennas: tuple[int, ...] = ()
    rssi_max_dbm: float | None = None
    rssi_max_raw: int | None = None
    flags: tuple[str, ...] = ()
    reader_time: datetime | None = None

    @property
    def id(self) -> SightingId:
        return SightingId(self.gateway_id, self.spool_id, self.seq)

    def replace(self, **changes: Any) -> Sighting:
        return self._replace(**changes)


def _max_opt(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def merge_sightings(a: Sighting, b: Sighting) -> Sighting:
    """Merge two messages about one sighting id (DESIGN.md, Concepts).

    ``closed`` beats ``open``; otherwise the later ``last_seen``, the larger ``reads`` and
    ``rssi_max``, the union of antennas (in order of first appearance) and of flags. The result
    does not depend on the order of the arguments except for fields both sides must agree on
    (tag, reader, first_seen), which are taken from the closed side, or from ``a`` on a tie.
    """
    if a.id != b.id:
        raise ValueError(f"merging different sightings: {a.id} and {b.id}")
    base, other = (b, a) if (b.state == "closed" and a.state != "closed") else (a, b)
    antennas = list(base.antennas)
    for ant in other.antennas:
        if ant not in antennas:
            antennas.append(ant)
    return base._replace(
        state="closed" if "closed" in (a.state, b.state) else "open",
        last_seen=max(a.last_seen, b.last_seen),
        reads=max(a.reads, b.reads),
        rssi_max_dbm=_max_opt(a.rssi_max_dbm, b.rssi_max_dbm),
        rssi_max_raw=_max_opt(a.rssi_max_raw, b.rssi_max_raw),
        antennas=tuple(antennas),
        antenna=base.antenna if base.antenna is not None else other.antenna,
        flags=tuple(sorted(set(a.flags) | set(b.flags))),
        reader_time=base.reader_time or other.reader_time,
    )
