"""Alert ids, derived from what caused the alert, so a redelivered cause never makes a second id.

Layout: the kind, then the parts of the cause, joined by ``:``::

    stolen_hit:{tag_id}:{case_no}                   one open alert per watchlist entry
    stolen_hit:{tag_id}:{case_no}:{since_ms}        the entry's next one, after it was closed
    clone_suspect:{gateway_id}:{spool_id}:{seq}     the sighting that made the impossible hop
    (stolen_hit:{gateway_id}:{spool_id}:{seq}       older trackers: still stored, still parsed)
    gateway_offline:{gateway_id}:{since_ms}         a subject, and when the episode began
    spool_overflow:{gateway_id}:{spool_id}          one open alert per spool
    spool_overflow:{gateway_id}:{spool_id}:{ms}     the spool's next one, after it was closed
    reader_silent:{reader_id}:{since_ms}

Gateway, spool and reader ids may themselves contain ``:`` (the wire allows
``[A-Za-z0-9._:-]``), so each part has its ``:`` written as ``%3A`` (and ``%`` never occurs in
an id): the encoding stays injective, and :func:`parse_alert_id` gives the parts back.
Every id stays within the alert schema's 200 characters: a kind (at most 15), three parts of at
most 64 (percent-escaping at most triples them, so long subjects are hashed, see
:func:`_part`), separators and a 16-digit number.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

from pak.timefmt import to_millis
from pak.types import SightingId
from pak.wire.alert import ALERT_KINDS

__all__ = [
    "ALERT_KINDS",
    "MAX_ALERT_ID",
    "overflow_alert_id",
    "parse_alert_id",
    "sighting_alert_id",
    "stolen_alert_id",
    "subject_alert_id",
]

MAX_ALERT_ID: Final = 200
#: An escaped part longer than this is replaced by a digest (keeps ids within MAX_ALERT_ID).
_MAX_PART: Final = 56


def _part(s: str) -> str:
    escaped = s.replace(":", "%3A")
    if len(escaped) <= _MAX_PART:
        return escaped
    # Only ids full of ':' get here (64 characters at most on the wire); a digest keeps the id
    # derived from the cause and short. The '#' marks it (never in an id, never escaped).
    return "#" + hashlib.blake2b(s.encode(), digest_size=12).hexdigest()


def _join(kind: str, *parts: str) -> str:
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    return ":".join((kind, *(_part(p) for p in parts)))


def sighting_alert_id(kind: str, sid: SightingId) -> str:
    """The id of an alert one sighting caused: the same for every delivery of that sighting
    (``open`` or ``closed``, first time or redelivered)."""
    return _join(kind, sid.gateway_id, sid.spool_id, str(sid.seq))


def stolen_alert_id(tag_id: str, case_no: str, since: datetime | None = None) -> str:
    """The id of the stolen-vehicle alert of one watchlist entry: every hit on the entry is an
    update of it, whichever instance or sighting brings it, with no storage asked. After an
    officer closed it, the entry's next alert is dated by the hit that opened it."""
    if since is None:
        return _join("stolen_hit", tag_id, case_no)
    return _join("stolen_hit", tag_id, case_no, str(to_millis(since)))


def overflow_alert_id(gateway_id: str, spool_id: str, since: datetime | None = None) -> str:
    """The id of the overflow alert of one spool; after an officer closed it, the spool's
    next one is dated by when its drops were seen."""
    if since is None:
        return _join("spool_overflow", gateway_id, spool_id)
    return _join("spool_overflow", gateway_id, spool_id, str(to_millis(since)))


def subject_alert_id(kind: str, subject: str, since: datetime) -> str:
    """The id of an episode about one subject (a gateway, a reader, a tag) that began at
    ``since``: trackers that see the same evidence derive the same id."""
    return _join(kind, subject, str(to_millis(since)))


def parse_alert_id(alert_id: str) -> tuple[str, tuple[str, ...]]:
    """``(kind, parts)`` of an id made here (parts unescaped; a hashed part stays hashed)."""
    kind, *parts = alert_id.split(":")
    if kind not in ALERT_KINDS or not parts:
        raise ValueError(f"not an alert id: {alert_id!r}")
    return kind, tuple(p.replace("%3A", ":") for p in parts)
