"""Codec of ``{root}/gw/{gateway_id}/hits``, the priority lane (gateway to centre, QoS 1;
schemas/hits.json).

A hit is a sightings message (the same codec and schema as ``{root}/gw/{id}/sightings``)
whose sightings are all ``open``: the first read of a tag that matched the gateway's edge
list. The tracker only looks sooner because of it: it raises an alert only when its own
watchlist holds the tag, and never stores or receipts a sighting from this topic (the bulk
lane carries the same sighting into storage).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from pak.types import Sighting
from pak.wire.errors import BAD_HIT, WireError
from pak.wire.sightings import REASONS as SIGHTINGS_REASONS
from pak.wire.sightings import SightingsMessage, encode_sightings, parse_sightings

__all__ = ["MAX_HIT_PAYLOAD", "REASONS", "SCHEMA", "encode_hit", "parse_hit"]

SCHEMA: Final = "hits"
REASONS: Final = (*SIGHTINGS_REASONS, BAD_HIT)
#: A hit carries a few sightings, never a backlog.
MAX_HIT_PAYLOAD: Final = 65_536


def encode_hit(gateway_id: str, spool_id: str, sightings: Sequence[Sighting],
               sent_at: datetime, *, clock_suspect: bool = False) -> bytes:
    """The payload of ``{root}/gw/{gateway_id}/hits`` for open sightings."""
    if any(s.state != "open" for s in sightings):
        raise ValueError("a hit carries open sightings only")
    return encode_sightings(gateway_id, spool_id, sightings, sent_at,
                            clock_suspect=clock_suspect)


def parse_hit(payload: bytes, *, topic_gateway_id: str, now: datetime | None = None,
              future_tolerance: timedelta = timedelta(minutes=5)) -> SightingsMessage:
    """A hit, checked like a sightings message (the gateway id must be the topic's) and
    refused unless every sighting is ``open``; WireError when refused."""
    msg = parse_sightings(payload, topic_gateway_id=topic_gateway_id, now=now,
                          future_tolerance=future_tolerance, max_bytes=MAX_HIT_PAYLOAD)
    if any(s.state != "open" for s in msg.sightings):
        raise WireError(BAD_HIT, "a hit carries open sightings only")
    return msg
