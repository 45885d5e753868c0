"""Reason codes of the wire contract: why a payload was refused (a dead letter's ``reason``).

Every refusal by a parser in :mod:`pak.wire` is a :class:`~pak.errors.WireError` whose
``reason`` is one of the codes below; each codec module lists the subset it raises in its
``REASONS``. Codes are stable (operators filter dead letters on them): add, never rename.
"""

from __future__ import annotations

from typing import Final

from pak.errors import WireError

__all__ = [
    "BAD_ALERT",
    "BAD_EDGE_WATCHLIST",
    "BAD_ENVELOPE",
    "BAD_FIELD",
    "BAD_HEALTH",
    "BAD_HIT",
    "BAD_SIGHTING",
    "BAD_SIGNATURE",
    "BAD_STATE",
    "BAD_TIME",
    "BAD_VERSION",
    "BAD_WATCHLIST",
    "FUTURE_TIME",
    "GATEWAY_MISMATCH",
    "LOADING",
    "NOT_JSON",
    "NOT_OBJECT",
    "STALE_REVISION",
    "TOO_DEEP",
    "TOO_LARGE",
    "UNKNOWN_KEY",
    "UNSIGNED",
    "WRONG_TOPIC",
    "WireError",
]

# Every message
TOO_LARGE: Final = "too_large"  #: the payload is larger than the message's limit
NOT_JSON: Final = "not_json"  #: not JSON (or nested deeper than 1024 levels)
NOT_OBJECT: Final = "not_object"  #: JSON, but not an object
BAD_VERSION: Final = "bad_version"  #: ``v`` is not 1
GATEWAY_MISMATCH: Final = "gateway_mismatch"  #: the payload's gateway id is not its topic's
# Sightings, receipts
BAD_ENVELOPE: Final = "bad_envelope"  #: missing or unexpected top-level keys
BAD_FIELD: Final = "bad_field"  #: a field's type or range breaks the schema
BAD_SIGHTING: Final = "bad_sighting"  #: a sighting that is not an object with the right keys
BAD_TIME: Final = "bad_time"  #: a time not written ``YYYY-MM-DDTHH:MM:SS.mmmZ``
FUTURE_TIME: Final = "future_time"  #: a time further in the future than the tolerance
# State, health, watchlist
BAD_STATE: Final = "bad_state"
BAD_HEALTH: Final = "bad_health"
BAD_WATCHLIST: Final = "bad_watchlist"
BAD_ALERT: Final = "bad_alert"
BAD_EDGE_WATCHLIST: Final = "bad_edge_watchlist"
BAD_HIT: Final = "bad_hit"  #: a hit that is not an open sighting
TOO_DEEP: Final = "too_deep"  #: nested deeper than the message allows
# Signed control messages (pak.wire.envelope)
UNSIGNED: Final = "unsigned"  #: no signed envelope where the receiver holds the centre's key
UNKNOWN_KEY: Final = "unknown_key"  #: signed by a key the receiver does not hold
BAD_SIGNATURE: Final = "bad_signature"  #: the signature does not match the body
WRONG_TOPIC: Final = "wrong_topic"  #: signed for another topic (a replay onto this one)
STALE_REVISION: Final = "stale_revision"  #: not newer than the last revision applied

#: What every parser may refuse with before it reads a field (the bounded JSON loader).
LOADING: Final = (TOO_LARGE, NOT_JSON, NOT_OBJECT, BAD_VERSION)
