"""Wire contract v1: one codec per message, each beside its JSON Schema (``schemas/``).

==============  ===============================  =============================================
module          topic                            encode / parse
==============  ===============================  =============================================
sightings       ``{root}/gw/{id}/sightings``     encode_sightings / parse_sightings
state           ``{root}/gw/{id}/state``         encode_state / parse_state
health          ``{root}/gw/{id}/health``        encode_health (Health) / parse_health
receipts        ``{root}/gw/{id}/receipts``      encode_receipts / parse_receipts
watchlist       ``{root}/watchlist``             encode_watchlist_change / parse_watchlist
alert           ``{root}/alerts/{kind}``         encode_alert (with rev) / the JSON Schema
edge_watchlist  ``{root}/edge/watchlist``        encode_edge_watchlist / parse_edge_watchlist
hits            ``{root}/gw/{id}/hits``          encode_hit / parse_hit (sightings of the lane)
presence        ``{root}/centre`` (retained)     encode_presence / parse_presence (rev: epoch)
envelope        (wraps the control messages)     encode_envelope / parse_envelope; control()
==============  ===============================  =============================================

Each codec module names its ``SCHEMA`` (file stem) and the ``REASONS`` it refuses with
(codes in :mod:`pak.wire.errors`); :mod:`pak.wire.topics` has the topic names and
:mod:`pak.wire.common` what they share. Every payload is a JSON object with ``"v": 1``; the
tests validate every codec's output against its schema and feed schema-valid messages to its
parser. Import from the codec modules; the names below are re-exported for older callers.
"""

from __future__ import annotations

from pak.wire.common import VERSION, dumps, is_valid_id, load_schema
from pak.wire.receipts import Receipt, compact_ranges, encode_receipts, parse_receipts
from pak.wire.sightings import (
    MAX_PAYLOAD,
    SightingsMessage,
    encode_sightings,
    parse_sightings,
    sighting_to_json,
)
from pak.wire.state import encode_state
from pak.wire.topics import DEFAULT_ROOT, Topics

__all__ = [
    "DEFAULT_ROOT",
    "MAX_PAYLOAD",
    "VERSION",
    "Receipt",
    "SightingsMessage",
    "Topics",
    "compact_ranges",
    "dumps",
    "encode_receipts",
    "encode_sightings",
    "encode_state",
    "is_valid_id",
    "load_schema",
    "parse_receipts",
    "parse_sightings",
    "sighting_to_json",
]
