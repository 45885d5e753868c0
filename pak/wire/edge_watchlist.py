"""Codec of ``{root}/edge/watchlist`` (retained; the tracker publishes, gateways read;
schemas/edge_watchlist.json)::

    {"v": 1, "topic": "pak/v1/edge/watchlist", "rev": 1764755702125,
     "kid": "<16 hex: which edge key hashed>", "hashes": ["<32 hex>", ...]}

Each hash is HMAC-SHA256 of the tag id as the wire writes it (upper-case hex, ASCII) under
the deployment's edge key, truncated to :data:`HASH_BYTES` bytes, in lower-case hex; the list
is sorted and holds no duplicate. Without the key the list says nothing about which tags are
watched (beyond how many); with it, anyone can test a tag he already knows (docs/edge-list.md).
``kid`` names the key (an HMAC of a fixed label, never the key) so a gateway holding another
key knows the list is not for it (rotation). ``rev`` grows with every snapshot (the producer's
clock in milliseconds, or one more than the last); receivers apply only a newer one. ``topic``
is in the body so a signed snapshot cannot be replayed onto another topic.

The payload passes through the envelope seam (:func:`pak.wire.envelope.control`) on the way
out; receivers unwrap it with :func:`pak.wire.envelope.accept_control` before parsing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pak.wire.common import VERSION, dumps, is_int, is_valid_tag, load_object
from pak.wire.envelope import ENVELOPE_FIELDS, control
from pak.wire.errors import BAD_EDGE_WATCHLIST, LOADING, WireError

__all__ = [
    "HASH_BYTES",
    "REASONS",
    "SCHEMA",
    "EdgeWatchlist",
    "edge_hash",
    "edge_key_id",
    "encode_edge_watchlist",
    "parse_edge_watchlist",
]

SCHEMA: Final = "edge_watchlist"
REASONS: Final = (*LOADING, BAD_EDGE_WATCHLIST)
#: Bytes kept of each HMAC: 128 bits, no collision among a city's stolen tags.
HASH_BYTES: Final = 16
#: Room for 200,000 watched tags (34 bytes each on the wire).
MAX_EDGE_PAYLOAD: Final = 8 << 20
MIN_KEY_BYTES: Final = 16
_KEYS: Final = frozenset({"v", "topic", "rev", "kid", "hashes"})
_HEX: Final = frozenset("0123456789abcdef")
_KID_LABEL: Final = b"pak edge key id v1"


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"an edge key has at least {MIN_KEY_BYTES} bytes, not {len(key)}")


def edge_hash(key: bytes, tag_id: str) -> str:
    """The keyed hash of one tag id (upper-case hex, as the wire writes it)."""
    _check_key(key)
    if not is_valid_tag(tag_id):
        raise ValueError(f"not a tag id as the wire writes it: {tag_id!r}")
    mac = hmac.new(key, tag_id.encode("ascii"), hashlib.sha256).digest()
    return mac[:HASH_BYTES].hex()


def edge_key_id(key: bytes) -> str:
    """A short public name of the key (8 bytes of HMAC over a fixed label, hex)."""
    _check_key(key)
    return hmac.new(key, _KID_LABEL, hashlib.sha256).digest()[:8].hex()


@dataclass(frozen=True, slots=True)
class EdgeWatchlist:
    """One snapshot of the edge list."""

    topic: str
    rev: int
    kid: str
    hashes: frozenset[str]


def encode_edge_watchlist(topic: str, rev: int, key: bytes, tags: Iterable[str]) -> bytes:
    """The snapshot of the watched ``tags`` (tag ids as the wire writes them), hashed with
    ``key``, through the envelope seam."""
    if not is_int(rev) or rev < 0:
        raise ValueError(f"rev is a non-negative integer, not {rev!r}")
    hashes = sorted({edge_hash(key, t) for t in tags})
    return control(dumps({"v": VERSION, "topic": topic, "rev": rev, "kid": edge_key_id(key),
                          "hashes": hashes}))


def _is_hex(s: object, n: int) -> bool:
    return isinstance(s, str) and len(s) == n and set(s) <= _HEX


def parse_edge_watchlist(payload: bytes) -> EdgeWatchlist:
    """A snapshot (the body, already out of its envelope); WireError when refused."""
    obj = load_object(payload, MAX_EDGE_PAYLOAD, version=True)
    if obj.keys() - (ENVELOPE_FIELDS - _KEYS) != _KEYS:  # a signed body names its issuer
        raise WireError(BAD_EDGE_WATCHLIST, f"keys={sorted(obj)}"[:200])
    topic, rev, kid, hashes = obj["topic"], obj["rev"], obj["kid"], obj["hashes"]
    if not isinstance(topic, str) or not topic or len(topic) > 200:
        raise WireError(BAD_EDGE_WATCHLIST, "topic")
    if not is_int(rev) or not 0 <= rev < 1 << 63:
        raise WireError(BAD_EDGE_WATCHLIST, f"rev={rev!r}"[:200])
    if not _is_hex(kid, 16):
        raise WireError(BAD_EDGE_WATCHLIST, f"kid={kid!r}"[:200])
    if not isinstance(hashes, list) or not all(_is_hex(h, 2 * HASH_BYTES) for h in hashes):
        raise WireError(BAD_EDGE_WATCHLIST, "hashes: lower-case hex strings of 32 digits")
    return EdgeWatchlist(topic, rev, kid, frozenset(hashes))
