"""Wire contract v1: topics, payload builders and the strict parser of sightings messages.

Every payload is a JSON object with ``"v": 1`` described by a JSON Schema in ``pak/schemas``.
The builders here produce exactly that shape; :func:`parse_sightings` checks an incoming
message against the same rules by hand (the ingest hot path cannot afford a generic validator
per message), and the test suite validates both against the JSON Schemas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Final, cast

import orjson

from pak.errors import WireError
from pak.timefmt import format_time
from pak.types import SIGHTING_FLAGS, TAG_KINDS, Sighting, TagKind

__all__ = [
    "DEFAULT_ROOT",
    "MAX_PAYLOAD",
    "Receipt",
    "SightingsMessage",
    "Topics",
    "compact_ranges",
    "dumps",
    "encode_receipts",
    "encode_sightings",
    "encode_state",
    "load_schema",
    "parse_receipts",
    "parse_sightings",
    "ranges_contain",
    "sighting_to_json",
]

VERSION: Final = 1
DEFAULT_ROOT: Final = "pak/v1"
#: Largest sightings payload the centre accepts (a full batch of 1000 is ~400 kB).
MAX_PAYLOAD: Final = 1_048_576
MAX_SIGHTINGS_PER_MESSAGE: Final = 1000

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_TAG_RE: Final = re.compile(r"[0-9A-F]{2,64}\Z")
_TIME_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
_SIGHTING_KEYS: Final = frozenset(
    "seq state tag_id tag_kind tag_type reader_id antenna antennas first_seen last_seen reads "
    "rssi_max_dbm rssi_max_raw flags reader_time".split()
)
_ENVELOPE_KEYS: Final = frozenset({"v", "gateway_id", "spool_id", "sent_at", "sightings"})
_ENVELOPE_OPTIONAL: Final = frozenset({"clock_suspect"})
_FLAGS: Final = frozenset(SIGHTING_FLAGS)
_KINDS: Final = frozenset(TAG_KINDS)
_fromisoformat: Final = datetime.fromisoformat


def is_valid_id(s: object) -> bool:
    """A gateway, reader or spool id: safe as one MQTT topic level."""
    return isinstance(s, str) and _ID_RE.match(s) is not None


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of wire contract v1 under a configurable root (default ``pak/v1``)."""

    root: str = DEFAULT_ROOT

    def sightings(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/sightings"

    def state(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/state"

    def health(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/health"

    def receipts(self, gateway_id: str) -> str:
        return f"{self.root}/gw/{gateway_id}/receipts"

    def alerts(self, kind: str) -> str:
        return f"{self.root}/alerts/{kind}"

    @property
    def watchlist(self) -> str:
        return f"{self.root}/watchlist"

    def all_gateways(self, leaf: str) -> str:
        """Wildcard subscription for one leaf (``sightings``, ``state``, ``health``)."""
        return f"{self.root}/gw/+/{leaf}"

    def shared(self, group: str, topic: str) -> str:
        """An MQTT 5 shared subscription of ``topic`` for ``group``."""
        return f"$share/{group}/{topic}"

    def gateway_of(self, topic: str, leaf: str) -> str | None:
        """The gateway id in ``{root}/gw/{id}/{leaf}``, or None when the topic is not one."""
        prefix = f"{self.root}/gw/"
        suffix = f"/{leaf}"
        if not (topic.startswith(prefix) and topic.endswith(suffix)):
            return None
        gid = topic[len(prefix) : len(topic) - len(suffix)]
        return gid if "/" not in gid and gid else None


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, the wire's encoding."""
    return orjson.dumps(obj)


def _t(t: datetime | None) -> str | None:
    return None if t is None else format_time(t)


def sighting_to_json(s: Sighting) -> dict[str, Any]:
    """One sighting object of the sightings payload (envelope fields excluded)."""
    return {
        "seq": s.seq,
        "state": s.state,
        "tag_id": s.tag_id,
        "tag_kind": s.tag_kind,
        "tag_type": s.tag_type,
        "reader_id": s.reader_id,
        "antenna": s.antenna,
        "antennas": list(s.antennas),
        "first_seen": format_time(s.first_seen),
        "last_seen": format_time(s.last_seen),
        "reads": s.reads,
        "rssi_max_dbm": s.rssi_max_dbm,
        "rssi_max_raw": s.rssi_max_raw,
        "flags": sorted(s.flags),
        "reader_time": _t(s.reader_time),
    }


def encode_sightings(
    gateway_id: str,
    spool_id: str,
    sightings: Sequence[Sighting],
    sent_at: datetime,
    *,
    clock_suspect: bool = False,
) -> bytes:
    """The payload of ``{root}/gw/{gateway_id}/sightings``."""
    if not sightings:
        raise ValueError("a sightings message carries at least one sighting")
    body: dict[str, Any] = {
        "v": VERSION,
        "gateway_id": gateway_id,
        "spool_id": spool_id,
        "sent_at": format_time(sent_at),
        "sightings": [sighting_to_json(s) for s in sightings],
    }
    if clock_suspect:
        body["clock_suspect"] = True
    return dumps(body)


def encode_state(state: str, at: datetime, *, gateway_id: str | None = None,
                 version: str | None = None) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "state": state, "at": format_time(at)}
    if gateway_id is not None:
        body["gateway_id"] = gateway_id
    if version is not None:
        body["version"] = version
    return dumps(body)


# --- receipts -------------------------------------------------------------------------------

def compact_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint, inclusive ``(first, last)`` ranges covering ``seqs``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def ranges_contain(ranges: Sequence[tuple[int, int]], seq: int) -> bool:
    return any(a <= seq <= b for a, b in ranges)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the centre has committed for one spool.

    ``closed`` covers sightings stored in their final (closed) state: the gateway may delete
    them. ``open`` covers sightings stored so far only as ``open``: the gateway stops
    republishing that open message but keeps the sighting until its closed form is receipted
    (so a late receipt of the open message can never delete the closed one)."""

    gateway_id: str
    spool_id: str
    closed: list[tuple[int, int]]
    open: list[tuple[int, int]]


def encode_receipts(gateway_id: str, spool_id: str, closed: Sequence[tuple[int, int]],
                    at: datetime, open: Sequence[tuple[int, int]] = ()) -> bytes:
    body: dict[str, Any] = {
        "v": VERSION,
        "gateway_id": gateway_id,
        "spool_id": spool_id,
        "at": format_time(at),
        "ranges": [[a, b] for a, b in closed],
    }
    if open:
        body["open_ranges"] = [[a, b] for a, b in open]
    return dumps(body)


def _ranges(obj: dict[str, Any], key: str) -> list[tuple[int, int]]:
    ranges = obj.get(key, [])
    if not isinstance(ranges, list) or len(ranges) > 10000:
        raise WireError("bad_field", key)
    out: list[tuple[int, int]] = []
    for r in ranges:
        if (not isinstance(r, list) or len(r) != 2 or not all(_is_int(x) and x >= 0 for x in r)
                or r[0] > r[1]):
            raise WireError("bad_field", f"{key}: range {r!r}")
        out.append((r[0], r[1]))
    return out


def parse_receipts(payload: bytes) -> Receipt:
    """A receipts payload; WireError when malformed."""
    obj = _load_object(payload, 1 << 20)
    if obj.get("v") != VERSION:
        raise WireError("bad_version", repr(obj.get("v")))
    gid, sid = obj.get("gateway_id"), obj.get("spool_id")
    if not is_valid_id(gid) or not is_valid_id(sid):
        raise WireError("bad_field", "gateway_id/spool_id")
    closed, open_ = _ranges(obj, "ranges"), _ranges(obj, "open_ranges")
    if not closed and not open_:
        raise WireError("bad_field", "no ranges")
    return Receipt(str(gid), str(sid), closed, open_)


# --- the strict sightings parser ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SightingsMessage:
    gateway_id: str
    spool_id: str
    sent_at: datetime
    sightings: list[Sighting]
    clock_suspect: bool = False


def _is_int(x: object) -> bool:
    return type(x) is int


def _load_object(payload: bytes, max_bytes: int) -> dict[str, Any]:
    if len(payload) > max_bytes:
        raise WireError("too_large", f"{len(payload)} bytes > {max_bytes}")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        # orjson also refuses nesting deeper than 1024 levels: that lands here too.
        raise WireError("not_json", str(e)[:200]) from None
    if not isinstance(obj, dict):
        raise WireError("not_object", type(obj).__name__)
    return obj


def _time(obj: dict[str, Any], key: str) -> datetime:
    v = obj.get(key)
    if type(v) is str and _TIME_RE.match(v) is not None:
        # The pattern admits only "...T..:..:..._Z" (milliseconds and a Z), which
        # datetime.fromisoformat reads as aware UTC (Python >= 3.11): what parse_time returns,
        # at a quarter of its cost on the ingest hot path. Impossible dates still raise.
        try:
            return _fromisoformat(v)
        except ValueError:
            pass
    raise WireError("bad_time", f"{key}={v!r}")


def _opt_int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    v = obj[key]
    if v is None:
        return None
    if type(v) is not int or not lo <= v <= hi:
        raise WireError("bad_field", f"{key}={v!r}")
    return v


def _parse_one(o: object, gateway_id: str, spool_id: str) -> Sighting:
    # The ingest hot path (tens of thousands per second): checks inline, cheapest first, and
    # every value's type checked before it meets a set (an unhashable one must be refused,
    # not crash the parser).
    if not isinstance(o, dict):
        raise WireError("bad_sighting", "not an object")
    keys = o.keys()
    if keys != _SIGHTING_KEYS:
        missing = sorted(_SIGHTING_KEYS - keys)
        extra = sorted(keys - _SIGHTING_KEYS)
        raise WireError("bad_sighting", f"missing={missing} unexpected={extra}")
    seq, state, tag_id, kind = o["seq"], o["state"], o["tag_id"], o["tag_kind"]
    if type(seq) is not int or seq < 0 or seq > 9007199254740991:
        raise WireError("bad_field", f"seq={seq!r}")
    if state != "open" and state != "closed":
        raise WireError("bad_field", f"state={state!r}")
    if type(tag_id) is not str or _TAG_RE.match(tag_id) is None:
        raise WireError("bad_field", f"tag_id={tag_id!r}")
    if type(kind) is not str or kind not in _KINDS:
        raise WireError("bad_field", f"tag_kind={kind!r}")
    reader_id = o["reader_id"]
    if type(reader_id) is not str or _ID_RE.match(reader_id) is None:
        raise WireError("bad_field", f"reader_id={reader_id!r}")
    antennas = o["antennas"]
    if type(antennas) is not list or len(antennas) > 64:
        raise WireError("bad_field", f"antennas={antennas!r}")
    for a in antennas:
        if type(a) is not int or not 1 <= a <= 64:
            raise WireError("bad_field", f"antennas={antennas!r}")
    if len(antennas) > 1 and len(set(antennas)) != len(antennas):
        raise WireError("bad_field", f"antennas={antennas!r}")
    reads = o["reads"]
    if type(reads) is not int or reads < 1:
        raise WireError("bad_field", f"reads={reads!r}")
    dbm = o["rssi_max_dbm"]
    if dbm is not None and (type(dbm) not in (int, float) or not -200 <= dbm <= 50):
        raise WireError("bad_field", f"rssi_max_dbm={dbm!r}")
    flags = o["flags"]
    if type(flags) is not list:
        raise WireError("bad_field", f"flags={flags!r}")
    if flags:
        for f in flags:
            if type(f) is not str or f not in _FLAGS:
                raise WireError("bad_field", f"flags={flags!r}")
        if len(flags) > 1:
            if len(set(flags)) != len(flags):
                raise WireError("bad_field", f"flags={flags!r}")
            flags = sorted(flags)
    first_seen, last_seen = _time(o, "first_seen"), _time(o, "last_seen")
    if last_seen < first_seen:
        raise WireError("bad_field", "last_seen before first_seen")
    reader_time = o["reader_time"]
    return Sighting(
        gateway_id=gateway_id,
        spool_id=spool_id,
        seq=seq,
        state=state,
        tag_id=tag_id,
        tag_kind=cast(TagKind, kind),
        reader_id=reader_id,
        first_seen=first_seen,
        last_seen=last_seen,
        reads=reads,
        tag_type=_opt_int(o, "tag_type", 0, 255),
        antenna=_opt_int(o, "antenna", 1, 64),
        antennas=tuple(antennas),
        rssi_max_dbm=None if dbm is None else float(dbm),
        rssi_max_raw=_opt_int(o, "rssi_max_raw", -128, 65535),
        flags=tuple(flags),
        reader_time=None if reader_time is None else _time(o, "reader_time"),
    )


def parse_sightings(
    payload: bytes,
    *,
    topic_gateway_id: str | None = None,
    now: datetime | None = None,
    future_tolerance: timedelta = timedelta(minutes=5),
    max_bytes: int = MAX_PAYLOAD,
) -> SightingsMessage:
    """Parse and check a sightings payload; raise :class:`WireError` with a reason code.

    Checks the JSON Schema's rules, plus what a schema cannot say: the envelope's gateway id
    must match the topic's, ``last_seen >= first_seen``, and no time may lie further in the
    future than ``future_tolerance`` past ``now`` (a backlog hours old is normal; a future
    time is a broken clock).
    """
    obj = _load_object(payload, max_bytes)
    if obj.get("v") != VERSION:
        raise WireError("bad_version", repr(obj.get("v")))
    keys = obj.keys()
    if not keys >= _ENVELOPE_KEYS or not keys <= _ENVELOPE_KEYS | _ENVELOPE_OPTIONAL:
        raise WireError("bad_envelope", f"keys={sorted(keys)}")
    gid, sid = obj["gateway_id"], obj["spool_id"]
    if not is_valid_id(gid):
        raise WireError("bad_field", f"gateway_id={gid!r}")
    if not is_valid_id(sid):
        raise WireError("bad_field", f"spool_id={sid!r}")
    if topic_gateway_id is not None and gid != topic_gateway_id:
        raise WireError("gateway_mismatch", f"payload {gid!r} on topic of {topic_gateway_id!r}")
    sent_at = _time(obj, "sent_at")
    suspect = obj.get("clock_suspect", False)
    if not isinstance(suspect, bool):
        raise WireError("bad_field", "clock_suspect")
    items = obj["sightings"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_SIGHTINGS_PER_MESSAGE:
        raise WireError("bad_field", "sightings: 1..1000 objects")
    sightings = [_parse_one(o, gid, sid) for o in items]
    if now is not None:
        limit = now + future_tolerance
        latest = max(max(s.last_seen for s in sightings), sent_at)
        if latest > limit:
            raise WireError("future_time", f"{format_time(latest)} > now {format_time(now)}")
    return SightingsMessage(gid, sid, sent_at, sightings, suspect)


def load_schema(name: str) -> dict[str, Any]:
    """One JSON Schema of the wire contract, by file stem (``sightings``, ``health`` ...)."""
    text = resources.files("pak").joinpath("schemas", f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
