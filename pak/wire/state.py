"""Codec of ``{root}/gw/{gateway_id}/state`` (retained; schemas/state.json)::

    {"v": 1, "state": "online" | "offline", "at": "...Z", ["gateway_id"], ["version"]}

The offline one is the gateway's MQTT will. A payload's ``gateway_id``, when present, must be
its topic's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pak.timefmt import format_time
from pak.wire.common import VERSION, dumps, lenient_time, load_object, same_gateway
from pak.wire.errors import BAD_STATE, GATEWAY_MISMATCH, LOADING, WireError

__all__ = [
    "MAX_STATUS_PAYLOAD",
    "REASONS",
    "SCHEMA",
    "STATES",
    "GatewayState",
    "encode_state",
    "parse_state",
]

SCHEMA: Final = "state"
REASONS: Final = (*LOADING, BAD_STATE, GATEWAY_MISMATCH)
#: A health or state payload is a few hundred bytes; anything near this is not one.
MAX_STATUS_PAYLOAD: Final = 65_536
STATES: Final = frozenset({"online", "offline"})


@dataclass(frozen=True, slots=True)
class GatewayState:
    """One state message; ``gateway_id`` is the topic's (the payload's must agree)."""

    gateway_id: str
    state: str
    at: datetime
    version: str | None = None


def encode_state(state: str, at: datetime, *, gateway_id: str | None = None,
                 version: str | None = None) -> bytes:
    body: dict[str, Any] = {"v": VERSION, "state": state, "at": format_time(at)}
    if gateway_id is not None:
        body["gateway_id"] = gateway_id
    if version is not None:
        body["version"] = version
    return dumps(body)


def parse_state(payload: bytes, topic_gateway_id: str) -> GatewayState:
    """A state payload on the topic of ``topic_gateway_id``; WireError when refused."""
    obj = load_object(payload, MAX_STATUS_PAYLOAD, version=True)
    state = obj.get("state")
    if state not in STATES:
        raise WireError(BAD_STATE, f"state={state!r}"[:200])
    same_gateway(obj, topic_gateway_id, BAD_STATE)
    at = lenient_time(obj, "at", BAD_STATE)
    version = obj.get("version")
    return GatewayState(topic_gateway_id, str(state), at,
                        version if isinstance(version, str) else None)
