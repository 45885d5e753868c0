"""Report a stolen vehicle, and take one off the watchlist: store, audit, announce.

Called by the API (``/api/v1/watchlist``), ``pak watchlist`` and the console, so the three
record the same audit entry and announce the same change. The audit entry is written even
when a removal finds nothing active (the attempt is an action on the record too).

Announcing is injected: :func:`watchlist_announcer` turns any ``publish(topic, payload, qos)``
(the tracker's or API's MQTT connection, the CLI's short-lived one) into the ``announce``
callable these take; without one, trackers pick the change up at their next reload.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pak.errors import ConfigError
from pak.timefmt import utcnow
from pak.wire import Topics
from pak.wire.envelope import SignerLike, control
from pak.wire.watchlist import encode_watchlist_change
from tracker.storage.base import AuditStore, WatchlistStore
from tracker.storage.records import WatchEntry
from tracker.usecases.audit import record_audit
from tracker.watchlist import WatchlistError, normalise_tag

__all__ = ["Announce", "ImportRow", "Rejected", "WatchlistConflict", "WatchlistPort",
           "import_watchlist",
           "read_watchlist_csv", "report_stolen", "watchlist_announcer", "withdraw"]

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


class WatchlistConflict(WatchlistError):
    """A report for a tag already active under another case: one active entry per tag."""

    def __init__(self, tag_id: str, case_no: str) -> None:
        super().__init__(f"标签 {tag_id} 已在布控中（案件 {case_no}） (tag {tag_id} is already "
                         f"on the watchlist under case {case_no})")
        self.tag_id = tag_id
        self.case_no = case_no


def _check_one_active(store: WatchlistStore, tag_id: str, case_no: str) -> None:
    """One active entry per tag: a report under the same case updates it; under another case
    it is refused, naming the case that holds the tag (until the storage keeps several cases
    on one entry)."""
    for other in store.watchlist(status="active", tag_id=tag_id):
        if other.case_no != case_no:
            raise WatchlistConflict(tag_id, other.case_no)


def report_stolen(store: WatchlistPort, tag_id: str, *, case_no: str, actor: str | None,
                  via: str, reporter: str | None = None, note: str = "",
                  reported_at: datetime | None = None, announce: Announce | None = None,
                  at: datetime | None = None) -> WatchEntry:
    """Put ``tag_id`` (normalised by the caller) on the watchlist under ``case_no``, audit it
    as ``actor`` (None: the operating-system user), and announce it."""
    now = at or utcnow()
    _check_one_active(store, tag_id, case_no)
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


# --- CSV import: pak watchlist import and POST /api/v1/watchlist/import -------------------------

@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    tag_id: str
    case: str
    reporter: str | None
    reported_at: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A CSV line refused, and why (line 1 is the header)."""

    line: int
    error: str


def read_watchlist_csv(text: str, *, now: datetime) -> tuple[list[ImportRow], list[Rejected]]:
    """Parse a watchlist CSV: a header naming ``tag_id`` and ``case`` (required), and
    optionally ``reporter``, ``reported_at`` (RFC 3339, a date, or a duration before ``now``)
    and ``note``. Returns the good rows and every refused line with its reason."""
    from tracker.trail_cli import parse_when

    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    fields = {f.strip().lower() for f in reader.fieldnames or ()}
    if not {"tag_id", "case"} <= fields:
        return [], [Rejected(1, "the header must name tag_id and case (found: "
                                f"{', '.join(sorted(fields)) or 'nothing'})")]
    rows: list[ImportRow] = []
    rejected: list[Rejected] = []
    for n, raw in enumerate(reader, start=2):
        r = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
             if isinstance(v, str | None)}
        try:
            if not r.get("case"):
                raise WatchlistError("case is empty")
            when = r.get("reported_at")
            rows.append(ImportRow(n, normalise_tag(r.get("tag_id", "")), r["case"],
                                  r.get("reporter") or None,
                                  parse_when(when, now) if when else None, r.get("note", "")))
        except (WatchlistError, ConfigError, ValueError) as e:
            rejected.append(Rejected(n, str(e)))
    return rows, rejected


def import_watchlist(store: WatchlistPort, text: str, *, actor: str | None, via: str,
                     announce: Announce | None = None,
                     at: datetime | None = None) -> tuple[int, list[Rejected]]:
    """Import a watchlist CSV, all or nothing: with any line refused nothing changes and the
    refused lines are returned; otherwise every row is reported (audited, announced) and the
    count returned."""
    now = at or utcnow()
    rows, rejected = read_watchlist_csv(text, now=now)
    first_case: dict[str, str] = {}  # tag -> the case of its first row in the file
    for r in rows:
        try:
            case = first_case.setdefault(r.tag_id, r.case)
            if case != r.case:
                raise WatchlistConflict(r.tag_id, case)
            _check_one_active(store, r.tag_id, r.case)
        except WatchlistConflict as e:
            rejected.append(Rejected(r.line, str(e)))
    rejected.sort(key=lambda x: x.line)
    if rejected:
        return 0, rejected
    for r in rows:
        report_stolen(store, r.tag_id, case_no=r.case, reporter=r.reporter, note=r.note,
                      reported_at=r.reported_at, actor=actor, via=via, announce=announce, at=now)
    return len(rows), []
