"""Checks of the non-sightings payloads the tracker consumes, and dead letters.

Sightings are checked by :func:`pak.wire.parse_sightings` (the contract's strict parser). Here:
``{root}/gw/{id}/state``, ``{root}/gw/{id}/health`` and ``{root}/watchlist``, checked against
the rules of their JSON Schemas that matter to the tracker, plus what a schema cannot say (the
gateway id must match the topic's). Every refusal is a :class:`~pak.errors.WireError` whose
``reason`` becomes the dead letter's reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from ingest.ports import DeadLetter
from pak.errors import WireError
from pak.timefmt import parse_time
from pak.wire import is_valid_id

__all__ = [
    "MAX_STATUS_PAYLOAD",
    "GatewayStatus",
    "dead_letter",
    "parse_health",
    "parse_state",
    "parse_watchlist",
]

#: A health or state payload is a few hundred bytes; anything near this is not one.
MAX_STATUS_PAYLOAD: Final = 65_536
#: Health holds objects of counters: nothing legitimate nests deeper than this.
MAX_HEALTH_DEPTH: Final = 4
_STATES: Final = frozenset({"online", "offline"})
_HEALTH_OBJECTS: Final = ("link", "clock", "counters", "spool")
_WATCHLIST_OPS: Final = frozenset({"add", "remove"})
_TAG_RE: Final = re.compile(r"[0-9A-F]{2,64}\Z")


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What a state or health message says about one gateway (one of state/health is set)."""

    gateway_id: str
    at: datetime
    state: str | None = None
    health: dict[str, Any] | None = None


def _load(payload: bytes, reason: str) -> dict[str, Any]:
    if len(payload) > MAX_STATUS_PAYLOAD:
        raise WireError("too_large", f"{len(payload)} bytes > {MAX_STATUS_PAYLOAD}")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise WireError("not_json", str(e)[:200]) from None
    if not isinstance(obj, dict):
        raise WireError("not_object", type(obj).__name__)
    if obj.get("v") != 1:
        raise WireError("bad_version", repr(obj.get("v"))[:50])
    return obj


def _time(obj: dict[str, Any], key: str, reason: str) -> datetime:
    value = obj.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_time(value)
    except ValueError:
        raise WireError(reason, f"{key}={value!r}"[:200]) from None


def _depth(obj: object, limit: int) -> bool:
    """True when ``obj`` nests no deeper than ``limit`` containers."""
    if isinstance(obj, dict):
        return limit > 0 and all(_depth(v, limit - 1) for v in obj.values())
    if isinstance(obj, list):
        return limit > 0 and all(_depth(v, limit - 1) for v in obj)
    return True


def _same_gateway(obj: dict[str, Any], topic_gateway_id: str, reason: str) -> None:
    gid = obj.get("gateway_id", topic_gateway_id)
    if not is_valid_id(gid):
        raise WireError(reason, f"gateway_id={gid!r}"[:200])
    if gid != topic_gateway_id:
        raise WireError("gateway_mismatch", f"payload {gid!r} on topic of {topic_gateway_id!r}")


def parse_state(payload: bytes, topic_gateway_id: str) -> GatewayStatus:
    """``{"v":1, "state":"online"|"offline", "at", ["gateway_id"], ["version"]}``."""
    obj = _load(payload, "bad_state")
    state = obj.get("state")
    if state not in _STATES:
        raise WireError("bad_state", f"state={state!r}"[:200])
    _same_gateway(obj, topic_gateway_id, "bad_state")
    return GatewayStatus(topic_gateway_id, _time(obj, "at", "bad_state"), state=str(state))


def parse_health(payload: bytes, topic_gateway_id: str) -> GatewayStatus:
    """A health payload: kept whole for the API, once its shape is plausible."""
    obj = _load(payload, "bad_health")
    if obj.get("gateway_id") is None:
        raise WireError("bad_health", "gateway_id missing")
    _same_gateway(obj, topic_gateway_id, "bad_health")
    at = _time(obj, "at", "bad_health")
    for key in _HEALTH_OBJECTS:
        if not isinstance(obj.get(key), dict):
            raise WireError("bad_health", f"{key} must be an object")
    if not _depth(obj, MAX_HEALTH_DEPTH):
        raise WireError("too_deep", f"nested deeper than {MAX_HEALTH_DEPTH}")
    return GatewayStatus(topic_gateway_id, at, health=obj)


def parse_watchlist(payload: bytes) -> dict[str, Any]:
    """A watchlist change ``{"v":1, "op":"add"|"remove", "tag_id", "at", ...}``."""
    obj = _load(payload, "bad_watchlist")
    if obj.get("op") not in _WATCHLIST_OPS:
        raise WireError("bad_watchlist", f"op={obj.get('op')!r}"[:200])
    tag = obj.get("tag_id")
    if not isinstance(tag, str) or _TAG_RE.match(tag) is None:
        raise WireError("bad_watchlist", f"tag_id={tag!r}"[:200])
    _time(obj, "at", "bad_watchlist")
    if not _depth(obj, 1):
        raise WireError("too_deep", "watchlist values must be scalars")
    return obj


def dead_letter(topic: str, payload: bytes, error: WireError,
                received_at: datetime) -> DeadLetter:
    """The dead letter of a refused message: its raw bytes, the reason code and the detail."""
    return DeadLetter(topic=topic, payload=bytes(payload), reason=error.reason,
                      detail=error.detail[:500], received_at=received_at)
