"""Codec of ``{root}/watchlist`` (watchlist changes, to every tracker instance;
schemas/watchlist.json)::

    {"v": 1, "op": "add" | "remove", "tag_id": "E200...", "at": "2026-11-28T06:15:02.125Z",
     "case": "HZ-2026-0415", "reporter": "...", "note": "...",
     "reason": "recovered" | "withdrawn" (remove only)}

A ``remove`` without ``case`` removes every active case of the tag. Absent optional fields are
left out, never sent as null. Also here: :func:`watch_entry_json`, a stored watchlist entry as
the API and ``pak watchlist list --json`` show it (``case_no``, like the API's request body).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from pak.timefmt import format_time
from pak.wire.common import (
    VERSION,
    check_depth,
    dumps,
    is_valid_tag,
    lenient_time,
    load_object,
    opt_time,
)
from pak.wire.envelope import control
from pak.wire.errors import BAD_WATCHLIST, LOADING, TOO_DEEP, WireError

__all__ = [
    "OPS",
    "REASONS",
    "SCHEMA",
    "WatchEntryRecord",
    "encode_watchlist_change",
    "parse_watchlist",
    "watch_entry_json",
]

SCHEMA: Final = "watchlist"
REASONS: Final = (*LOADING, BAD_WATCHLIST, TOO_DEEP)
OPS: Final = frozenset({"add", "remove"})
MAX_WATCHLIST_PAYLOAD: Final = 65_536


def encode_watchlist_change(op: str, tag_id: str, at: datetime, *, case: str | None = None,
                            reporter: str | None = None, note: str | None = None,
                            reason: str | None = None) -> bytes:
    """The payload announced on ``{root}/watchlist`` for one change."""
    if op not in OPS:
        raise ValueError(f"op must be add or remove, not {op!r}")
    body: dict[str, Any] = {"v": VERSION, "op": op, "tag_id": tag_id, "at": format_time(at)}
    for key, value in (("case", case), ("reporter", reporter), ("note", note),
                       ("reason", reason)):
        if value is not None:
            body[key] = value
    return control(dumps(body))


def parse_watchlist(payload: bytes) -> dict[str, Any]:
    """A watchlist change, checked against the schema's rules that matter to the tracker;
    WireError when refused."""
    obj = load_object(payload, MAX_WATCHLIST_PAYLOAD, version=True)
    if obj.get("op") not in OPS:
        raise WireError(BAD_WATCHLIST, f"op={obj.get('op')!r}"[:200])
    tag = obj.get("tag_id")
    if not is_valid_tag(tag):
        raise WireError(BAD_WATCHLIST, f"tag_id={tag!r}"[:200])
    lenient_time(obj, "at", BAD_WATCHLIST)
    check_depth(obj, 1, "watchlist values must be scalars")
    return obj


class WatchEntryLike(Protocol):
    """What a stored watchlist entry offers (tracker.storage.records.WatchEntry)."""

    @property
    def tag_id(self) -> str: ...
    @property
    def case_no(self) -> str: ...
    @property
    def reporter(self) -> str | None: ...
    @property
    def reported_at(self) -> datetime: ...
    @property
    def note(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def changed_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class WatchEntryRecord:
    """A stored watchlist entry as the API (its response model) and ``pak watchlist list
    --json`` show it; times as the wire writes them."""

    tag_id: str
    case_no: str
    reporter: str | None
    reported_at: str | None
    note: str
    status: str
    changed_at: str | None


def watch_entry_json(w: WatchEntryLike) -> dict[str, Any]:
    """:class:`WatchEntryRecord` of a stored entry, as JSON."""
    return asdict(WatchEntryRecord(w.tag_id, w.case_no, w.reporter, opt_time(w.reported_at),
                                   w.note, w.status, opt_time(w.changed_at)))
