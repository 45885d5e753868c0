"""Codec of ``{root}/centre`` (retained, centre to gateways; schemas/presence.json): the
centre's presence and its epoch::

    {"v": 1, "topic": "{root}/centre", "issuer": "<tracker client id>", "rev": EPOCH,
     "at": "...Z"}

``rev`` is the epoch: an integer that grows with every (re)subscription of a tracker instance
(ingest/presence.py says how it is chosen). A gateway that sees an epoch greater than the last
one it acted on republishes everything unreceipted at once. The body names its topic, issuer
and revision so that the signing seam (issue 18) can refuse a misaddressed or replayed one:
the encoder goes through :func:`pak.wire.envelope.control`, the parser takes the bytes
:func:`pak.wire.envelope.accept_control` returns. ``at`` is informative only: freshness is
judged by ``rev``, never by a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pak.timefmt import format_time
from pak.wire.common import VERSION, dumps, is_int, is_valid_id, lenient_time, load_object
from pak.wire.envelope import SignerLike, VerifierLike, accept_control, control
from pak.wire.errors import BAD_FIELD, LOADING, WireError

__all__ = ["MAX_EPOCH", "REASONS", "SCHEMA", "Presence", "encode_presence", "parse_presence"]

SCHEMA: Final = "presence"
REASONS: Final = (*LOADING, BAD_FIELD)
MAX_PRESENCE_PAYLOAD: Final = 4096
#: JSON's safe integer range: every reader of the body can hold the epoch exactly.
MAX_EPOCH: Final = 2**53 - 1
_KEYS: Final = frozenset({"v", "topic", "issuer", "rev", "at"})


@dataclass(frozen=True, slots=True)
class Presence:
    """One presence message: who announced itself, with which epoch, on which topic."""

    topic: str
    issuer: str
    epoch: int
    at: datetime


def encode_presence(p: Presence, signer: SignerLike | None = None) -> bytes:
    if not 0 <= p.epoch <= MAX_EPOCH:
        raise ValueError(f"epoch out of range: {p.epoch}")
    return control(dumps({"v": VERSION, "topic": p.topic, "issuer": p.issuer, "rev": p.epoch,
                          "at": format_time(p.at)}), signer, p.topic)


def parse_presence(payload: bytes, topic: str, verifier: VerifierLike | None = None) -> Presence:
    """A presence payload received on ``topic``; WireError when refused (malformed, or a body
    naming another topic: a message replayed elsewhere)."""
    obj = load_object(accept_control(payload, topic, verifier), MAX_PRESENCE_PAYLOAD,
                      version=True)
    if obj.keys() != _KEYS:
        raise WireError(BAD_FIELD, f"keys={sorted(obj)}"[:200])
    rev, issuer = obj["rev"], obj["issuer"]
    if not is_int(rev) or not 0 <= rev <= MAX_EPOCH:
        raise WireError(BAD_FIELD, f"rev={rev!r}"[:200])
    if not is_valid_id(issuer):
        raise WireError(BAD_FIELD, "issuer")
    if obj["topic"] != topic:
        raise WireError(BAD_FIELD, f"topic {obj['topic']!r} received on {topic!r}"[:200])
    return Presence(topic, str(issuer), int(rev), lenient_time(obj, "at", BAD_FIELD))
