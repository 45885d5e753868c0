"""The watchlist as every tracker instance holds it: a dict from tag id to its active cases.

Storage is the truth (table ``watchlist``); each instance keeps the active entries in memory,
because every incoming sighting is checked against them before it is batched, and that check
must cost one dict lookup. The cache is

* loaded from storage at start (:meth:`WatchlistCache.load`);
* changed at once by the announcements on ``{root}/watchlist`` that ``pak watchlist`` and the
  API publish (:meth:`WatchlistCache.apply`; the tracker's MQTT connection calls it);
* reloaded from storage every ``reload_s`` seconds, so an announcement that never arrived (a
  tracker that was down, a broker restart) is healed within one period.

A reload reads storage while announcements keep arriving; changes applied while the read is in
flight are applied again on top of what it returns, so the reload never undoes a newer one.

Announcement payload (codec: pak.wire.watchlist; schema: pak/wire/schemas/watchlist.json)::

    {"v": 1, "op": "add" | "remove", "tag_id": "E200...", "at": "2026-11-28T06:15:02.125Z",
     "case": "HZ-2026-0415", "reporter": "...", "note": "...",
     "reason": "recovered" | "withdrawn" (remove only)}

A ``remove`` without ``case`` removes every active case of the tag.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pak.errors import PakError
from pak.logs import event
from pak.timefmt import parse_time, utcnow
from tracker.storage.base import Storage, StorageError
from tracker.storage.records import WatchEntry

__all__ = [
    "WatchlistCache",
    "WatchlistError",
    "normalise_tag",
]

log = logging.getLogger("pak.tracker.watchlist")

_HEX: Final = frozenset("0123456789ABCDEF")


class WatchlistError(PakError):
    """A watchlist request pak refuses (a tag id that is not one, an unknown status)."""


def normalise_tag(text: str) -> str:
    """A tag id as the wire writes it: upper-case hex, separators (space, ``:``, ``-``)
    removed. Raises WatchlistError for anything else."""
    tag = "".join(c for c in text.strip().upper() if c not in " :-")
    if not 2 <= len(tag) <= 64 or not set(tag) <= _HEX:
        raise WatchlistError(f"not a tag id (2-64 hex digits): {text!r}")
    return tag


@dataclass(frozen=True, slots=True)
class _Change:
    op: str
    tag_id: str
    case: str | None
    entry: WatchEntry | None


class WatchlistCache:
    """Active watchlist entries by tag, for O(1) lookups on the ingest hot path.

    ``lookup`` takes no lock: it reads one dict, whose values are replaced whole (tuples), and
    the dict itself is swapped whole by a reload. Writers (announcements, reloads) serialise
    on a lock.
    """

    def __init__(self, storage: Storage, *, reload_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._storage = storage
        self.reload_s = reload_s
        self._clock = clock
        self._entries: dict[str, tuple[WatchEntry, ...]] = {}
        self._lock = threading.Lock()
        self._journal: list[_Change] | None = None  # changes applied while a reload reads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_at: datetime | None = None
        self.reloads = 0
        self.announcements = 0

    # --- the hot path ---------------------------------------------------------------------------

    def lookup(self, tag_id: str) -> tuple[WatchEntry, ...] | None:
        """The tag's active entries (one per case), or None when it is not watched."""
        return self._entries.get(tag_id)

    def __contains__(self, tag_id: object) -> bool:
        return tag_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def tags(self) -> list[str]:
        return list(self._entries)

    # --- changes ----------------------------------------------------------------------------------

    @staticmethod
    def _index(entries: Iterable[WatchEntry]) -> dict[str, tuple[WatchEntry, ...]]:
        out: dict[str, list[WatchEntry]] = {}
        for e in entries:
            if e.status == "active":
                out.setdefault(e.tag_id, []).append(e)
        return {t: tuple(sorted(es, key=lambda e: e.case_no)) for t, es in out.items()}

    def load(self) -> int:
        """Replace the cache with storage's active entries; returns how many tags are watched.
        Raises StorageError when storage cannot be read (the old cache stays)."""
        with self._lock:
            self._journal = []
        try:
            fresh = self._index(self._storage.watchlist(status="active"))
        except BaseException:
            with self._lock:
                self._journal = None
            raise
        with self._lock:
            for ch in self._journal or ():
                self._apply(fresh, ch)
            self._journal = None
            self._entries = fresh
            self.loaded_at = self._clock()
            self.reloads += 1
            return len(fresh)

    @staticmethod
    def _apply(entries: dict[str, tuple[WatchEntry, ...]], ch: _Change) -> None:
        current = entries.get(ch.tag_id, ())
        if ch.op == "add" and ch.entry is not None:
            kept = tuple(e for e in current if e.case_no != ch.entry.case_no)
            entries[ch.tag_id] = tuple(sorted((*kept, ch.entry), key=lambda e: e.case_no))
            return
        kept = () if ch.case is None else tuple(e for e in current if e.case_no != ch.case)
        if kept:
            entries[ch.tag_id] = kept
        else:
            entries.pop(ch.tag_id, None)

    def apply(self, change: dict[str, Any]) -> None:
        """Apply one announcement (already checked against the schema's rules by ingest)."""
        op, tag = change["op"], change["tag_id"]
        case = change.get("case")
        at = parse_time(change["at"])
        entry = None
        if op == "add":
            entry = WatchEntry(tag_id=tag, case_no=str(case or ""), reporter=change.get("reporter"),
                               reported_at=at, note=str(change.get("note") or ""),
                               status="active", changed_at=at)
        ch = _Change(op, tag, None if case is None else str(case), entry)
        with self._lock:
            self._apply(self._entries, ch)
            if self._journal is not None:
                self._journal.append(ch)
            self.announcements += 1

    def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None:
        """The ingest pipeline's WatchlistHook."""
        self.apply(change)
        event(log, logging.INFO, "watchlist_change", op=change["op"], tag_id=change["tag_id"],
              case=change.get("case"), watched=len(self._entries))

    # --- the periodic reload ----------------------------------------------------------------------

    def start(self) -> None:
        """Reload every ``reload_s`` seconds in a thread of its own (after :meth:`load`)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="pak-watchlist-reload",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.reload_s):
            try:
                n = self.load()
            except StorageError as e:
                if not failing:
                    event(log, logging.WARNING, "watchlist_reload_failed", error=str(e)[:300],
                          action="keeping the cache; retrying next period")
                failing = True
                continue
            if failing:
                event(log, logging.INFO, "watchlist_reloaded", watched=n)
            failing = False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
