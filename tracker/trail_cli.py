"""``pak trail``: a tag's trail from storage, audited with the operating-system user.

    pak trail TAG --db URL --reason TEXT [--since WHEN] [--until WHEN]
              [--trip-gap-min 30] [--max-speed-kmh 120] [--json | --geojson]

WHEN is an RFC 3339 time (``2026-11-28T06:00:00Z``, or with an offset), a date
(``2026-11-28``, midnight UTC), or a duration before now (``90m``, ``6h``, ``7d``). A time
without a zone is read as UTC. Default window: the last 24 hours.

The query is written to the audit log (who, why, which tag, which window) before anything is
shown; without ``--reason`` nothing is queried. Output: a table for people, ``--json`` (the
API's trail object) or ``--geojson`` (a LineString per trip, a Point per pass).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from pak.errors import ConfigError
from pak.timefmt import format_time, utcnow
from tracker.trails.trail import Trail, direction_of_travel, trail_geojson, trail_json
from tracker.watchlist import WatchlistError, normalise_tag

__all__ = ["main", "parse_when"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\Z")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: datetime) -> datetime:
    """An absolute time, a date, or a duration before ``now`` (see the module doc)."""
    t = text.strip()
    m = _DURATION.match(t.lower())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t[-1:] in "Zz" else t)
    except ValueError:
        raise ConfigError(f"not a time, date or duration: {text!r} (e.g. 2026-11-28T06:00Z, "
                          "2026-11-28, 6h)") from None
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt).astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak trail", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tag", metavar="TAG", help="tag id (hex)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="storage URL (default: $PAK_DB_URL)")
    p.add_argument("--reason", required=True,
                   help="why this trail is queried (recorded in the audit log)")
    p.add_argument("--since", default="24h", metavar="WHEN", help="start (default: 24h)")
    p.add_argument("--until", default=None, metavar="WHEN", help="end (default: now)")
    p.add_argument("--trip-gap-min", type=float, default=30.0, metavar="MIN",
                   help="a pause longer than this starts a new trip (default: 30)")
    p.add_argument("--max-speed-kmh", type=float, default=120.0, metavar="KMH",
                   help="a faster hop is flagged implausible (default: 120)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the trail as JSON")
    out.add_argument("--geojson", action="store_true", help="the trail as GeoJSON")
    return p


def _hhmmss(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(trail: Trail, names: dict[str, str], since: datetime, until: datetime,
                out: TextIO) -> None:
    """The trail for people: one block per trip, one line per pass with the hop into it."""
    passes = trail.passes
    flagged = sum(h.implausible for h in trail.hops)
    out.write(f"Trail of {trail.tag_id}, {_hhmmss(since)} to {_hhmmss(until)} UTC: "
              f"{len(trail.trips)} trip(s), {len(passes)} pass(es)"
              + (f", {flagged} implausible hop(s)" if flagged else "") + "\n")
    if trail.unknown_readers:
        out.write(f"readers without a position: {', '.join(trail.unknown_readers)}\n")
    for i, trip in enumerate(trail.trips, 1):
        dur = (trip.end - trip.start).total_seconds() / 60
        out.write(f"\nTrip {i}: {_hhmmss(trip.start)} - {_hhmmss(trip.end)} ({dur:.0f} min)\n")
        out.write(f"  {'#':>3}  {'first seen':<19}  {'left':<8}  {'reader':<12} {'name':<24} "
                  f"{'dir':<6} {'km':>6} {'min':>6} {'km/h':>6}\n")
        for j, p in enumerate(trip.passes):
            hop = trip.hops[j - 1] if j else None
            d = direction_of_travel(p.antennas)
            km = f"{hop.distance_m / 1000:.2f}" if hop and hop.distance_m is not None else ""
            mins = f"{hop.travel_s / 60:.1f}" if hop else ""
            kmh = f"{hop.speed_kmh:.0f}" if hop and hop.speed_kmh is not None else ""
            flag = f"  ! {hop.reason}" if hop and hop.implausible else ""
            out.write(f"  {j + 1:>3}  {_hhmmss(p.first_seen):<19}  "
                      f"{p.last_seen.astimezone(UTC).strftime('%H:%M:%S'):<8}  "
                      f"{p.reader_id[:12]:<12} {names.get(p.reader_id, '')[:24]:<24} "
                      f"{(d['towards'] if d else ''):<6} {km:>6} {mins:>6} {kmh:>6}{flag}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    url = args.db or os.environ.get("PAK_DB_URL")
    if not url:
        raise ConfigError("--db is required (or set PAK_DB_URL)")
    if not args.reason.strip():
        raise ConfigError("--reason must say why the trail is queried")
    try:
        tag = normalise_tag(args.tag)
    except WatchlistError as e:
        raise ConfigError(str(e)) from None
    now = utcnow()
    until = parse_when(args.until, now) if args.until else now
    since = parse_when(args.since, now)
    if since >= until:
        raise ConfigError("--since must be before --until")

    from tracker.storage import open_storage
    from tracker.trails.queries import readers_for, trail
    from tracker.usecases.audit import record_audit

    with open_storage(url) as storage:
        fmt = "geojson" if args.geojson else "json" if args.json else "table"
        record_audit(storage, action="trail", reason=args.reason.strip(),
                     params={"tag_id": tag, "since": format_time(since),
                             "until": format_time(until), "format": fmt, "via": "pak trail"})
        t = trail(storage, tag_id=tag, since=since, until=until,
                  trip_gap=timedelta(minutes=args.trip_gap_min),
                  max_speed_kmh=args.max_speed_kmh)
        readers = readers_for(storage, [p.reader_id for p in t.passes])
    if fmt == "json":
        body = trail_json(t)
        body.update({"since": format_time(since), "until": format_time(until)})
        print(json.dumps(body, indent=2))
    elif fmt == "geojson":
        print(json.dumps(trail_geojson(t, readers), indent=2))
    else:
        print_table(t, {rid: r.name for rid, r in readers.items()}, since, until, sys.stdout)
    return 0
