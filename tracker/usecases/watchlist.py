"""Report a stolen vehicle, and take one off the watchlist: store, audit, announce.

Called by the API (``/api/v1/watchlist``), ``pak watchlist`` and the console, so the three
record the same audit entry and announce the same change. The audit entry is written even
when a removal finds nothing active (the attempt is an action on the record too).

Announcing is injected: :func:`watchlist_announcer` turns any ``publish(topic, payload, qos)``
(the tracker's or API's MQTT connection, the CLI's short-lived one) into the ``announce``
callable these take; without one, trackers pick the change up at their next reload.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pak.timefmt import utcnow
from pak.wire import Topics
from pak.wire.envelope import SignerLike, control
from pak.wire.watchlist import encode_watchlist_change
from tracker.storage.base import AuditStore, WatchlistStore
from tracker.storage.records import WatchEntry
from tracker.usecases.audit import record_audit

__all__ = ["Announce", "WatchlistPort", "report_stolen", "watchlist_announcer", "withdraw"]

#: ``announce(payload)``: publish one change on ``{root}/watchlist``.
Announce = Callable[[bytes], None]


class WatchlistPort(WatchlistStore, AuditStore, Protocol):
    """What these use cases need from storage (every :class:`~tracker.storage.base.Storage`
    is one)."""


def watchlist_announcer(publish: Callable[[str, bytes, int], object], topics: Topics,
                        signer: SignerLike | None = None) -> Announce:
    """Announce changes through ``publish`` on ``{root}/watchlist`` at QoS 1, signed by
    ``signer`` (unsigned without one: a loopback trial)."""
    topic = topics.watchlist

    def announce(payload: bytes) -> None:
        publish(topic, control(payload, signer, topic), 1)

    return announce


def report_stolen(store: WatchlistPort, tag_id: str, *, case_no: str, actor: str | None,
                  via: str, reporter: str | None = None, note: str = "",
                  reported_at: datetime | None = None, announce: Announce | None = None,
                  at: datetime | None = None) -> WatchEntry:
    """Put ``tag_id`` (normalised by the caller) on the watchlist under ``case_no``, audit it
    as ``actor`` (None: the operating-system user), and announce it."""
    now = at or utcnow()
    entry = store.watchlist_add(tag_id, case_no=case_no, reporter=reporter,
                                reported_at=reported_at or now, note=note, at=now)
    record_audit(store, actor=actor, action="watchlist_add", reason=f"case {case_no}",
                 params={"tag_id": tag_id, "case": case_no, "reporter": reporter, "note": note,
                         "via": via}, at=now)
    if announce is not None:
        announce(encode_watchlist_change("add", entry.tag_id, now, case=entry.case_no,
                                         reporter=entry.reporter, note=entry.note))
    return entry


def withdraw(store: WatchlistPort, tag_id: str, *, status: str, actor: str | None, via: str,
             case_no: str | None = None, announce: Announce | None = None,
             at: datetime | None = None) -> int:
    """Move the tag's active entries (or only ``case_no``'s) to ``status`` (``recovered`` or
    ``withdrawn``), audit it, and announce it when anything changed. Returns how many
    entries changed."""
    now = at or utcnow()
    changed = store.watchlist_remove(tag_id, status=status, at=now, case_no=case_no)
    record_audit(store, actor=actor, action="watchlist_remove", reason=status,
                 params={"tag_id": tag_id, "case": case_no, "changed": changed, "via": via},
                 at=now)
    if changed and announce is not None:
        announce(encode_watchlist_change("remove", tag_id, now, case=case_no, reason=status))
    return changed
