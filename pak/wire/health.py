"""Codec of ``{root}/gw/{gateway_id}/health`` (periodic; schemas/health.json).

:class:`Health` is the typed message: the gateway builds one and sends
:func:`encode_health` (or keeps :func:`health_json` as its snapshot); cumulative counters, so a
lost message loses nothing. Counters and spool fields beyond the schema's named ones travel in
``extra`` (the schema admits further numeric counters), in the order given.

The centre's check, :func:`parse_health`, is deliberately looser than :meth:`Health.from_json`:
it refuses what is implausible (no gateway id, the wrong gateway, a bad time, a missing
section, deep nesting) and keeps the object whole for the API, so a gateway one release ahead
that adds a field is still shown. :meth:`Health.from_json` is the strict typed reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pak.timefmt import format_time
from pak.wire.common import (
    VERSION,
    check_depth,
    dumps,
    is_int,
    is_valid_id,
    lenient_time,
    load_object,
    same_gateway,
)
from pak.wire.errors import (
    BAD_HEALTH,
    BAD_VERSION,
    GATEWAY_MISMATCH,
    LOADING,
    TOO_DEEP,
    WireError,
)
from pak.wire.state import MAX_STATUS_PAYLOAD

__all__ = [
    "LINK_STATES",
    "MAX_HEALTH_DEPTH",
    "REASONS",
    "SCHEMA",
    "ClockHealth",
    "Counters",
    "Health",
    "HealthReport",
    "LinkHealth",
    "SpoolHealth",
    "encode_health",
    "health_json",
    "parse_health",
]

SCHEMA: Final = "health"
REASONS: Final = (*LOADING, BAD_HEALTH, GATEWAY_MISMATCH, TOO_DEEP)
#: Health holds objects of counters: nothing legitimate nests deeper than this.
MAX_HEALTH_DEPTH: Final = 4
LINK_STATES: Final = ("connected", "connecting", "backoff", "down", "listening")
CLOCK_STATES: Final = ("ok", "suspect")
_SECTIONS: Final = ("link", "clock", "counters", "spool")
_COUNTERS: Final = ("frames_ok", "reads", "sightings", "dropped", "reconnects")
_OPTIONAL_COUNTERS: Final = ("garbage_bytes", "published", "republished", "receipted")
_SPOOL_NAMED: Final = ("spool_id", "depth", "oldest_age_s", "bytes", "dropped_total",
                       "oldest_dropped", "max_duration_s", "exit_after_s")

Number = int | float


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """The reader link: its state, where it points, since when, the stations dialled in."""

    state: str
    url: str | None = None
    since: datetime | None = None
    stations: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.url:
            out["url"] = self.url
        if self.since is not None:
            out["since"] = format_time(self.since)
        if self.stations is not None:
            out["stations"] = list(self.stations)
        return out


@dataclass(frozen=True, slots=True)
class ClockHealth:
    """``ok`` or ``suspect`` (with the reason): a suspect clock's times are marked so."""

    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason} if self.reason else \
            {"status": self.status}


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative since the gateway started; ``frames_bad`` by reason code."""

    frames_ok: int
    frames_bad: Mapping[str, int]
    reads: int
    sightings: int
    dropped: int
    reconnects: int
    garbage_bytes: int | None = None
    published: int | None = None
    republished: int | None = None
    receipted: int | None = None
    extra: Mapping[str, Number] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frames_ok": self.frames_ok,
                               "frames_bad": {str(k): v for k, v in self.frames_bad.items()}}
        if self.garbage_bytes is not None:
            out["garbage_bytes"] = self.garbage_bytes
        out.update(reads=self.reads, sightings=self.sightings, dropped=self.dropped,
                   reconnects=self.reconnects)
        for key in ("published", "republished", "receipted"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class SpoolHealth:
    """The spool: its depth and age; ``dropped_total`` closed sightings dropped for space that
    no receipt showed stored, the oldest of them first seen at ``oldest_dropped`` (sent, null
    or a time, whenever ``dropped_total`` is); the smoother's ``max_duration_s`` and
    ``exit_after_s``, which bound how long a sighting stays open. All optional: an older
    gateway sends none of them."""

    spool_id: str
    depth: int
    oldest_age_s: float | None
    bytes: int | None = None
    extra: Mapping[str, Number] = field(default_factory=dict)
    dropped_total: int | None = None
    oldest_dropped: datetime | None = None
    max_duration_s: Number | None = None
    exit_after_s: Number | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spool_id": self.spool_id, "depth": self.depth,
                               "oldest_age_s": self.oldest_age_s}
        if self.bytes is not None:
            out["bytes"] = self.bytes
        if self.dropped_total is not None:
            out["dropped_total"] = self.dropped_total
            out["oldest_dropped"] = (None if self.oldest_dropped is None
                                     else format_time(self.oldest_dropped))
        for key in ("max_duration_s", "exit_after_s"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Health:
    """One health message (schemas/health.json)."""

    gateway_id: str
    at: datetime
    uptime_s: float
    link: LinkHealth
    clock: ClockHealth
    counters: Counters
    spool: SpoolHealth
    readers: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "gateway_id": self.gateway_id,
                               "at": format_time(self.at), "uptime_s": self.uptime_s}
        if self.readers is not None:
            out["readers"] = list(self.readers)
        out.update(link=self.link.to_json(), clock=self.clock.to_json(),
                   counters=self.counters.to_json(), spool=self.spool.to_json())
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Health:
        """The strict reading of a decoded health object; WireError(bad_health) when it breaks
        the schema's rules."""
        try:
            return _health_from(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise WireError(BAD_HEALTH, str(e)[:200]) from None


def health_json(h: Health) -> dict[str, Any]:
    """The payload object of ``h`` (what the gateway keeps as its last snapshot)."""
    return h.to_json()


def encode_health(h: Health) -> bytes:
    """The payload of ``{root}/gw/{gateway_id}/health``."""
    return dumps(h.to_json())


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What the centre keeps of one health message: who, when, and the object whole."""

    gateway_id: str
    at: datetime
    body: dict[str, Any]


def parse_health(payload: bytes, topic_gateway_id: str) -> HealthReport:
    """A health payload on the topic of ``topic_gateway_id``, kept whole once its shape is
    plausible; WireError when refused."""
    obj = load_object(payload, MAX_STATUS_PAYLOAD, version=True)
    if obj.get("gateway_id") is None:
        raise WireError(BAD_HEALTH, "gateway_id missing")
    same_gateway(obj, topic_gateway_id, BAD_HEALTH)
    at = lenient_time(obj, "at", BAD_HEALTH)
    for key in _SECTIONS:
        if not isinstance(obj.get(key), dict):
            raise WireError(BAD_HEALTH, f"{key} must be an object")
    check_depth(obj, MAX_HEALTH_DEPTH, f"nested deeper than {MAX_HEALTH_DEPTH}")
    return HealthReport(topic_gateway_id, at, obj)


# --- the strict reading ---------------------------------------------------------------------

def _count(obj: Mapping[str, Any], key: str) -> int:
    v = obj[key]
    if not is_int(v) or v < 0:
        raise ValueError(f"{key}={v!r}")
    return int(v)


def _opt_count(obj: Mapping[str, Any], key: str) -> int | None:
    return None if key not in obj else _count(obj, key)


def _number(v: object, key: str) -> Number:
    if type(v) not in (int, float):
        raise ValueError(f"{key}={v!r}")
    return v  # type: ignore[return-value]


def _time_of(obj: Mapping[str, Any], key: str) -> datetime:
    return lenient_time(dict(obj), key, BAD_HEALTH)


def _health_from(obj: Mapping[str, Any]) -> Health:
    if obj.get("v") != VERSION:
        raise WireError(BAD_VERSION, repr(obj.get("v"))[:50])
    known = {"v", "gateway_id", "at", "uptime_s", "readers", *_SECTIONS}
    if not set(obj) <= known:
        raise ValueError(f"unexpected {sorted(set(obj) - known)}")
    gid = obj["gateway_id"]
    if not is_valid_id(gid):
        raise ValueError(f"gateway_id={gid!r}")
    uptime = _number(obj["uptime_s"], "uptime_s")
    if uptime < 0:
        raise ValueError("uptime_s")
    readers = obj.get("readers")
    if readers is not None and not all(is_valid_id(r) for r in readers):
        raise ValueError("readers")
    ln, ck, co, sp = (obj[k] for k in _SECTIONS)
    if not all(isinstance(x, dict) for x in (ln, ck, co, sp)):
        raise ValueError("link, clock, counters and spool are objects")
    if ln["state"] not in LINK_STATES:
        raise ValueError(f"link.state={ln['state']!r}")
    stations = ln.get("stations")
    link = LinkHealth(ln["state"], _opt_str(ln, "url"),
                      _time_of(ln, "since") if "since" in ln else None,
                      None if stations is None else tuple(_strs(stations, "link.stations")))
    if ck["status"] not in CLOCK_STATES:
        raise ValueError(f"clock.status={ck['status']!r}")
    clock = ClockHealth(ck["status"], _opt_str(ck, "reason"))
    bad = co["frames_bad"]
    if not isinstance(bad, dict):
        raise ValueError("frames_bad")
    named = {"frames_ok", "frames_bad", *_COUNTERS, *_OPTIONAL_COUNTERS}
    counters = Counters(
        frames_ok=_count(co, "frames_ok"),
        frames_bad={k: _count(bad, k) for k in bad},
        reads=_count(co, "reads"), sightings=_count(co, "sightings"),
        dropped=_count(co, "dropped"), reconnects=_count(co, "reconnects"),
        **{k: _opt_count(co, k) for k in _OPTIONAL_COUNTERS},
        extra={k: _number(v, k) for k, v in co.items() if k not in named})
    if not is_valid_id(sp["spool_id"]):
        raise ValueError("spool.spool_id")
    age = sp["oldest_age_s"]
    if age is not None and (_number(age, "oldest_age_s") < 0):
        raise ValueError("oldest_age_s")
    if "oldest_dropped" in sp and "dropped_total" not in sp:
        raise ValueError("spool.oldest_dropped without dropped_total")
    limits = {k: _positive(sp, k) for k in ("max_duration_s", "exit_after_s")}
    spool = SpoolHealth(sp["spool_id"], _count(sp, "depth"), age, _opt_count(sp, "bytes"),
                        {k: _number(v, k) for k, v in sp.items() if k not in _SPOOL_NAMED},
                        dropped_total=_opt_count(sp, "dropped_total"),
                        oldest_dropped=None if sp.get("oldest_dropped") is None
                        else _time_of(sp, "oldest_dropped"), **limits)
    return Health(gid, _time_of(obj, "at"), uptime, link, clock, counters, spool,
                  None if readers is None else tuple(readers))


def _positive(obj: Mapping[str, Any], key: str) -> Number | None:
    if key not in obj:
        return None
    v = _number(obj[key], key)
    if v <= 0:
        raise ValueError(f"{key}={v!r}")
    return v


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{key}={v!r}")
    return v


def _strs(v: object, key: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(key)
    return v
