"""Codec of ``{root}/gw/{gateway_id}/sightings`` (gateway to centre, QoS 1;
schemas/sightings.json): the builder and the strict parser.

The builder produces exactly the schema's shape; :func:`parse_sightings` checks an incoming
message against the same rules by hand (the ingest hot path cannot afford a generic validator
per message), and the test suite checks both against the JSON Schema on generated messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from pak.timefmt import format_time
from pak.types import SIGHTING_FLAGS, TAG_KINDS, Sighting, TagKind
from pak.wire.common import ID_RE, TAG_RE, TIME_RE, VERSION, dumps, is_valid_id, load_object
from pak.wire.errors import (
    BAD_ENVELOPE,
    BAD_FIELD,
    BAD_SIGHTING,
    BAD_TIME,
    BAD_VERSION,
    FUTURE_TIME,
    GATEWAY_MISMATCH,
    LOADING,
    WireError,
)

__all__ = [
    "MAX_PAYLOAD",
    "MAX_SIGHTINGS_PER_MESSAGE",
    "REASONS",
    "SCHEMA",
    "SightingsMessage",
    "encode_sightings",
    "parse_sightings",
    "sighting_to_json",
]

SCHEMA: Final = "sightings"
REASONS: Final = (*LOADING, BAD_ENVELOPE, BAD_FIELD, GATEWAY_MISMATCH, BAD_SIGHTING, BAD_TIME,
                  FUTURE_TIME)
#: Largest sightings payload the centre accepts (a full batch of 1000 is ~400 kB).
MAX_PAYLOAD: Final = 1_048_576
MAX_SIGHTINGS_PER_MESSAGE: Final = 1000

_ID_RE: Final = ID_RE
_TAG_RE: Final = TAG_RE
_TIME_RE: Final = TIME_RE
_SIGHTING_KEYS: Final = frozenset(
    "seq state tag_id tag_kind tag_type reader_id antenna antennas first_seen last_seen reads "
    "rssi_max_dbm rssi_max_raw flags reader_time".split()
)
_ENVELOPE_KEYS: Final = frozenset({"v", "gateway_id", "spool_id", "sent_at", "sightings"})
_ENVELOPE_OPTIONAL: Final = frozenset({"clock_suspect"})
_FLAGS: Final = frozenset(SIGHTING_FLAGS)
_KINDS: Final = frozenset(TAG_KINDS)
_fromisoformat: Final = datetime.fromisoformat
_Sighting: Final = Sighting


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
        "reader_time": None if s.reader_time is None else format_time(s.reader_time),
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


# --- the strict sightings parser ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SightingsMessage:
    gateway_id: str
    spool_id: str
    sent_at: datetime
    sightings: list[Sighting]
    clock_suspect: bool = False


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
    raise WireError(BAD_TIME, f"{key}={v!r}")


def _opt_int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    v = obj[key]
    if v is None:
        return None
    if type(v) is not int or not lo <= v <= hi:
        raise WireError(BAD_FIELD, f"{key}={v!r}")
    return v


def _parse_one(o: object, gateway_id: str, spool_id: str) -> Sighting:
    # The ingest hot path (tens of thousands per second): checks inline, cheapest first, and
    # every value's type checked before it meets a set (an unhashable one must be refused,
    # not crash the parser).
    if not isinstance(o, dict):
        raise WireError(BAD_SIGHTING, "not an object")
    keys = o.keys()
    if keys != _SIGHTING_KEYS:
        missing = sorted(_SIGHTING_KEYS - keys)
        extra = sorted(keys - _SIGHTING_KEYS)
        raise WireError(BAD_SIGHTING, f"missing={missing} unexpected={extra}")
    seq, state, tag_id, kind = o["seq"], o["state"], o["tag_id"], o["tag_kind"]
    if type(seq) is not int or seq < 0 or seq > 9007199254740991:
        raise WireError(BAD_FIELD, f"seq={seq!r}")
    if state != "open" and state != "closed":
        raise WireError(BAD_FIELD, f"state={state!r}")
    if type(tag_id) is not str or _TAG_RE.match(tag_id) is None:
        raise WireError(BAD_FIELD, f"tag_id={tag_id!r}")
    if type(kind) is not str or kind not in _KINDS:
        raise WireError(BAD_FIELD, f"tag_kind={kind!r}")
    reader_id = o["reader_id"]
    if type(reader_id) is not str or _ID_RE.match(reader_id) is None:
        raise WireError(BAD_FIELD, f"reader_id={reader_id!r}")
    antennas = o["antennas"]
    if type(antennas) is not list or len(antennas) > 64:
        raise WireError(BAD_FIELD, f"antennas={antennas!r}")
    for a in antennas:
        if type(a) is not int or not 1 <= a <= 64:
            raise WireError(BAD_FIELD, f"antennas={antennas!r}")
    if len(antennas) > 1 and len(set(antennas)) != len(antennas):
        raise WireError(BAD_FIELD, f"antennas={antennas!r}")
    reads = o["reads"]
    if type(reads) is not int or reads < 1:
        raise WireError(BAD_FIELD, f"reads={reads!r}")
    dbm = o["rssi_max_dbm"]
    if dbm is not None and (type(dbm) not in (int, float) or not -200 <= dbm <= 50):
        raise WireError(BAD_FIELD, f"rssi_max_dbm={dbm!r}")
    flags = o["flags"]
    if type(flags) is not list:
        raise WireError(BAD_FIELD, f"flags={flags!r}")
    if flags:
        for f in flags:
            if type(f) is not str or f not in _FLAGS:
                raise WireError(BAD_FIELD, f"flags={flags!r}")
        if len(flags) > 1:
            if len(set(flags)) != len(flags):
                raise WireError(BAD_FIELD, f"flags={flags!r}")
            flags = sorted(flags)
    first_seen, last_seen = _time(o, "first_seen"), _time(o, "last_seen")
    if last_seen < first_seen:
        raise WireError(BAD_FIELD, "last_seen before first_seen")
    reader_time = o["reader_time"]
    # Positional, in the field order of pak.types.Sighting: the cheapest way to build it.
    return _Sighting(
        gateway_id, spool_id, seq, state, tag_id, cast(TagKind, kind), reader_id,
        first_seen, last_seen, reads,
        _opt_int(o, "tag_type", 0, 255),
        _opt_int(o, "antenna", 1, 64),
        tuple(antennas),
        None if dbm is None else float(dbm),
        _opt_int(o, "rssi_max_raw", -128, 65535),
        tuple(flags),
        None if reader_time is None else _time(o, "reader_time"),
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
    obj = load_object(payload, max_bytes)
    if obj.get("v") != VERSION:
        raise WireError(BAD_VERSION, repr(obj.get("v")))
    keys = obj.keys()
    if not keys >= _ENVELOPE_KEYS or not keys <= _ENVELOPE_KEYS | _ENVELOPE_OPTIONAL:
        raise WireError(BAD_ENVELOPE, f"keys={sorted(keys)}")
    gid, sid = obj["gateway_id"], obj["spool_id"]
    if not is_valid_id(gid):
        raise WireError(BAD_FIELD, f"gateway_id={gid!r}")
    if not is_valid_id(sid):
        raise WireError(BAD_FIELD, f"spool_id={sid!r}")
    if topic_gateway_id is not None and gid != topic_gateway_id:
        raise WireError(GATEWAY_MISMATCH, f"payload {gid!r} on topic of {topic_gateway_id!r}")
    sent_at = _time(obj, "sent_at")
    suspect = obj.get("clock_suspect", False)
    if not isinstance(suspect, bool):
        raise WireError(BAD_FIELD, "clock_suspect")
    items = obj["sightings"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_SIGHTINGS_PER_MESSAGE:
        raise WireError(BAD_FIELD, "sightings: 1..1000 objects")
    sightings = [_parse_one(o, gid, sid) for o in items]
    if now is not None:
        limit = now + future_tolerance
        latest = max(max(s.last_seen for s in sightings), sent_at)
        if latest > limit:
            raise WireError(FUTURE_TIME, f"{format_time(latest)} > now {format_time(now)}")
    return SightingsMessage(gid, sid, sent_at, sightings, suspect)

