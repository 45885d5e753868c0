"""The signed envelope that will wrap the control messages (receipts, watchlist changes, the
edge watchlist, centre presence, alerts)::

    {"v": 1, "kid": "<key id>", "sig": "<base64 Ed25519 signature of body's bytes>",
     "body": "<the exact JSON text of the control message>"}

The body travels as text, not as a nested object, so the bytes signed are the bytes checked
(no re-serialisation between signer and verifier).

Today nothing is signed: every control-message encoder passes its bytes through
:func:`control`, which returns them unchanged. Issue 18 fills that one seam (sign and wrap
with the deployment's key, and the matching unwrap-and-verify on receipt); the encoders and
their call sites do not change. :class:`Envelope` with :func:`encode_envelope` /
:func:`parse_envelope` is the codec of the shape itself (schemas/envelope.json); it checks
the shape only, no signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pak.wire.common import VERSION, dumps, load_object
from pak.wire.errors import BAD_ENVELOPE, LOADING, WireError

__all__ = ["REASONS", "SCHEMA", "Envelope", "accept_control", "control", "encode_envelope",
           "parse_envelope"]

SCHEMA: Final = "envelope"
REASONS: Final = (*LOADING, BAD_ENVELOPE)
MAX_ENVELOPE_PAYLOAD: Final = 1 << 21
_KEYS: Final = frozenset({"v", "kid", "sig", "body"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """One signed control message: the key id, the signature and the body's exact text."""

    kid: str
    sig: str
    body: str


def encode_envelope(e: Envelope) -> bytes:
    return dumps({"v": VERSION, "kid": e.kid, "sig": e.sig, "body": e.body})


def parse_envelope(payload: bytes) -> Envelope:
    """The envelope's shape (no signature check); WireError when it is not one."""
    obj = load_object(payload, MAX_ENVELOPE_PAYLOAD, version=True)
    if obj.keys() != _KEYS:
        raise WireError(BAD_ENVELOPE, f"keys={sorted(obj)}")
    kid, sig, body = obj["kid"], obj["sig"], obj["body"]
    if not all(isinstance(x, str) and x for x in (kid, sig, body)):
        raise WireError(BAD_ENVELOPE, "kid, sig and body are non-empty strings")
    return Envelope(kid, sig, body)


def control(body: bytes) -> bytes:
    """The seam every control-message encoder passes its encoded body through.

    Unsigned trial deployments (today: all of them) send the body as it is. Issue 18 makes
    this wrap the body in a signed :class:`Envelope` when a signing key is configured."""
    return body


def accept_control(payload: bytes, topic: str) -> bytes:
    """The receiving side of :func:`control`: the body bytes a control-message parser reads,
    from the ``payload`` received on ``topic``.

    Unsigned trial deployments (today: all of them) take the payload as the body. Issue 18
    makes this unwrap the :class:`Envelope`, verify its signature and raise WireError for an
    unsigned or badly signed one; the parser then checks that the body names ``topic``."""
    return payload
