"""The signed envelope of the control messages (receipts, watchlist changes, the edge
watchlist, centre presence, alerts)::

    {"v": 1, "kid": "<key id>", "sig": "<base64 Ed25519 signature of body's UTF-8 bytes>",
     "body": "<the exact JSON text of the control message>"}

The body travels as text, not as a nested object, so the bytes signed are the bytes checked
(no re-serialisation between signer and verifier). The signed body is the control message's
own object plus ``topic`` (the topic it was published on: a body replayed onto another topic
is refused), ``issuer`` (the issuing service) and ``rev`` (a revision: the alert's own, or the
signer's strictly growing counter; receivers that apply state refuse a revision not newer
than the last applied, through :class:`Revisions`).

Two seams, each with its key object injected (never module state):

- :func:`control` ``(body, signer, topic)``: every control-message encoder passes its bytes
  through it. Without a signer (an unsigned trial on a loopback broker) the body goes as it
  is; with one it is wrapped and signed.
- :func:`accept_control` ``(payload, topic, verifier) -> body``: every receiver of a control
  message passes the payload through it before the message's own parser. With a verifier
  it refuses (WireError) what is unsigned, signed by an unknown key, badly signed or signed
  for another topic; it returns the body's exact text, as signed (with ``topic``, ``issuer``
  and ``rev``: every parser tolerates :data:`ENVELOPE_FIELDS`, which unsigned trial bodies may
  lack). Without a verifier (trial) a plain body is accepted and an envelope is unwrapped
  unchecked.

Signing objects are structural (:class:`SignerLike`, :class:`VerifierLike`; :mod:`pak.keys`
has the Ed25519 ones), so this codec never imports the crypto library.
:class:`Envelope` with :func:`encode_envelope` / :func:`parse_envelope` is the codec of the
shape itself (schemas/envelope.json).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pak.logs import event
from pak.wire.common import VERSION, dumps, is_int, load_object
from pak.wire.errors import (
    BAD_ENVELOPE,
    BAD_SIGNATURE,
    LOADING,
    STALE_REVISION,
    UNKNOWN_KEY,
    UNSIGNED,
    WRONG_TOPIC,
    WireError,
)

__all__ = [
    "ENVELOPE_FIELDS",
    "REASONS",
    "SCHEMA",
    "Envelope",
    "Refusals",
    "Revisions",
    "SignerLike",
    "VerifierLike",
    "accept_control",
    "control",
    "encode_envelope",
    "parse_envelope",
]

SCHEMA: Final = "envelope"
REASONS: Final = (*LOADING, BAD_ENVELOPE, UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, WRONG_TOPIC,
                  STALE_REVISION)
#: Fields the envelope adds to a control message's body when the message lacks them (``rev``
#: as well, when it has none of its own).
ENVELOPE_FIELDS: Final = frozenset({"topic", "issuer"})
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


class SignerLike(Protocol):
    """What :func:`control` needs of a signer (pak.keys.Signer)."""

    @property
    def kid(self) -> str: ...
    @property
    def issuer(self) -> str: ...
    def sign(self, data: bytes) -> bytes: ...
    def next_rev(self) -> int: ...


class VerifierLike(Protocol):
    """What :func:`accept_control` needs of a verifier (pak.keys.Verifier)."""

    def verify(self, kid: str, sig: bytes, data: bytes) -> bool: ...


def control(body: bytes, signer: SignerLike | None = None, topic: str | None = None) -> bytes:
    """The seam every control-message encoder's bytes pass through on their way out.

    Without ``signer`` (unsigned trial): ``body`` unchanged. With one: ``body`` (a JSON
    object) plus ``topic``, ``issuer`` and ``rev`` (a message's own ``issuer`` and ``rev`` are
    kept: presence names its instance and epoch; else the signer's name and next revision),
    signed and wrapped in an :class:`Envelope`."""
    if signer is None:
        return body
    if not topic:
        raise ValueError("a signed control message names its topic")
    obj: dict[str, Any] = load_object(body, MAX_ENVELOPE_PAYLOAD)
    if obj.setdefault("topic", topic) != topic:
        raise ValueError(f"body names topic {obj['topic']!r}, published on {topic!r}")
    obj.setdefault("issuer", signer.issuer)
    if not is_int(obj.get("rev")):
        obj["rev"] = signer.next_rev()
    text = dumps(obj)
    sig = base64.b64encode(signer.sign(text)).decode("ascii")
    return encode_envelope(Envelope(signer.kid, sig, text.decode("utf-8")))


def accept_control(payload: bytes, topic: str, verifier: VerifierLike | None = None) -> bytes:
    """The control message in ``payload`` received on ``topic``, as its codec parses it;
    WireError (reason in :data:`REASONS`) when refused. See the module docstring."""
    obj = load_object(payload, MAX_ENVELOPE_PAYLOAD)
    if obj.keys() != _KEYS:
        if verifier is not None:
            raise WireError(UNSIGNED, f"{len(payload)} bytes without a signed envelope")
        return payload
    env = parse_envelope(payload)
    data = env.body.encode("utf-8")
    if verifier is not None:
        try:
            sig = base64.b64decode(env.sig, validate=True)
        except (binascii.Error, ValueError):
            raise WireError(BAD_SIGNATURE, "sig is not base64") from None
        if not verifier.verify(env.kid, sig, data):
            kids = getattr(verifier, "kids", None)
            if kids is not None and env.kid not in kids:
                raise WireError(UNKNOWN_KEY, f"kid={env.kid!r}"[:100])
            raise WireError(BAD_SIGNATURE, f"kid={env.kid!r}"[:100])
    named = load_object(data, MAX_ENVELOPE_PAYLOAD).get("topic")
    if named != topic:
        raise WireError(WRONG_TOPIC, f"signed for {named!r} on {topic!r}"[:300])
    return data


class Revisions:
    """The last revision applied per key (a tag, a topic): :meth:`check` refuses one not
    newer and records the others. Freshness is judged by revisions only,
    never by the receiver's clock. Thread-safe; bounded to the newest ``size`` keys."""

    def __init__(self, size: int = 1_000_000) -> None:
        self._last: dict[Hashable, int] = {}
        self._size = size
        self._lock = threading.Lock()

    def check(self, key: Hashable, rev: object) -> None:
        """Record ``rev`` for ``key``; WireError(stale_revision) when it is not newer than
        the last one recorded. No integer ``rev`` (an unsigned trial message): never refused."""
        if not is_int(rev):
            return
        assert isinstance(rev, int)
        with self._lock:
            last = self._last.get(key)
            if last is not None and rev <= last:
                raise WireError(STALE_REVISION, f"rev {rev} <= {last} applied")
            if last is None and len(self._last) >= self._size:
                self._last.pop(next(iter(self._last)))
            self._last[key] = rev


class Refusals:
    """Refused control messages: counted per reason (``counts``, and ``on_refuse`` for a
    service's metric) and logged once per (source, reason), so a flood from one forger is one
    log line, not a million."""

    def __init__(self, log: logging.Logger, what: str,
                 on_refuse: Callable[[str], None] | None = None) -> None:
        self._log = log
        self._what = what
        self._on_refuse = on_refuse
        self._seen: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def refuse(self, source: str, e: WireError) -> None:
        with self._lock:
            self.counts[e.reason] = self.counts.get(e.reason, 0) + 1
            first = (source, e.reason) not in self._seen
            if first and len(self._seen) < 10_000:
                self._seen.add((source, e.reason))
        if self._on_refuse is not None:
            self._on_refuse(e.reason)
        if first:
            event(self._log, logging.WARNING, "control_refused", what=self._what,
                  source=source, reason=e.reason, detail=e.detail[:200])

    @property
    def total(self) -> int:
        return sum(self.counts.values())
