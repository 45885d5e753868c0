"""The tracker's reading of the non-sightings payloads it consumes, and dead letters.

Every check is the wire codec's (:mod:`pak.wire.state`, :mod:`pak.wire.health`,
:mod:`pak.wire.watchlist`; sightings: :func:`pak.wire.sightings.parse_sightings`); here only
what ingest makes of them: a :class:`GatewayStatus` for the batcher (one of state/health set)
and the dead letter of a refused message. Every refusal is a
:class:`~pak.errors.WireError` whose ``reason`` becomes the dead letter's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.ports import DeadLetter
from pak.errors import WireError
from pak.wire import health as health_codec
from pak.wire import state as state_codec
from pak.wire.watchlist import parse_watchlist

__all__ = [
    "GatewayStatus",
    "dead_letter",
    "parse_health",
    "parse_state",
    "parse_watchlist",
]


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What a state or health message says about one gateway (one of state/health is set)."""

    gateway_id: str
    at: datetime
    state: str | None = None
    health: dict[str, Any] | None = None


def parse_state(payload: bytes, topic_gateway_id: str) -> GatewayStatus:
    """A state message as a gateway status (checks: :func:`pak.wire.state.parse_state`)."""
    s = state_codec.parse_state(payload, topic_gateway_id)
    return GatewayStatus(s.gateway_id, s.at, state=s.state)


def parse_health(payload: bytes, topic_gateway_id: str) -> GatewayStatus:
    """A health message as a gateway status, kept whole for the API (checks:
    :func:`pak.wire.health.parse_health`)."""
    h = health_codec.parse_health(payload, topic_gateway_id)
    return GatewayStatus(h.gateway_id, h.at, health=h.body)


def dead_letter(topic: str, payload: bytes, error: WireError,
                received_at: datetime) -> DeadLetter:
    """The dead letter of a refused message: its raw bytes, the reason code and the detail."""
    return DeadLetter(topic=topic, payload=bytes(payload), reason=error.reason,
                      detail=error.detail[:500], received_at=received_at)
