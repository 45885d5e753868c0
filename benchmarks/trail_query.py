"""Trail query speed: one tag over 30 days, with 10 million sightings in the hypertable.

    pak bench trail_query [--rows 10000000] [--days 30] [--queries 300] [--db URL]

A scratch database on the local PostgreSQL (TimescaleDB) is migrated as the tracker does, then
filled with ``--rows`` sightings spread over ``--days`` days by ``COPY ... FROM STDIN`` in time
order (as ingest fills it: one chunk per day), ``--readers`` readers and one tag per
``--rows-per-tag`` rows (a commuter's few passes a day over a month). Then ``--queries`` random
tags are asked for their trail over the whole window:

* ``storage``: ``storage.sightings(tag_id=..., since=..., until=...)`` alone (the prepared,
  index-only part);
* ``trail``: :func:`tracker.trails.queries.trail` as the API calls it (storage query, passes, trips,
  hops with distances and speeds), with the readers' map cached as the API caches it;
  ``trail_first`` is each tag's first query (its rows may not be in the database's cache
  yet), ``trail`` the same tags again.

Goal: p99 <= 10 ms for the trail of one tag over 30 days at 10 million rows.
A quick run: ``--rows 1000000``.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.harness import BenchError, scratch_postgres

__all__ = ["run"]

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
_COLS = ("gateway_id, spool_id, seq, state, tag_id, tag_kind, tag_type, reader_id, antenna, "
         "antennas, first_seen, last_seen, reads, rssi_max_dbm, rssi_max_raw, flags")


def _pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def _tag(i: int) -> str:
    return f"E2003412{i:016X}"


def _rows(n: int, days: int, tags: int, readers: int, start: datetime,
          seed: int) -> Iterator[bytes]:
    """COPY text blocks of ``n`` sightings in time order, a day at a time."""
    rng = random.Random(seed)
    per_day = n // days
    seq = 0
    for d in range(days):
        count = per_day if d < days - 1 else n - per_day * (days - 1)
        day = start + timedelta(days=d)
        secs = sorted(rng.random() * 86400 for _ in range(count))
        buf = io.StringIO()
        for k, s in enumerate(secs):
            seq += 1
            r = rng.randrange(readers)
            first = day + timedelta(seconds=s)
            dwell = 1 + rng.random() * 8
            last = first + timedelta(seconds=dwell)
            buf.write(f"gw-{r:05d}\tsp-bench\t{seq}\tclosed\t{_tag(rng.randrange(tags))}\t"
                      f"active\t48\tR{r:05d}\t1\t{{1,3}}\t{first.isoformat()}\t"
                      f"{last.isoformat()}\t{int(dwell) + 1}\t-61.5\t190\t{{}}\n")
            if k % 50_000 == 49_999:
                yield buf.getvalue().encode()
                buf = io.StringIO()
        yield buf.getvalue().encode()


def _load(url: str, args: argparse.Namespace, start: datetime) -> dict[str, Any]:
    import psycopg

    from tracker.storage import Reader, open_storage

    with open_storage(url) as st:
        st.migrate()
        rng = random.Random(args.seed + 1)
        st.upsert_readers([Reader(f"R{r:05d}", f"Junction {r}", 30.2 + rng.random() * 0.1,
                                  120.1 + rng.random() * 0.1) for r in range(args.readers)])
    t0 = time.perf_counter()
    tags = max(1, args.rows // args.rows_per_tag)
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY sightings ({_COLS}) FROM STDIN") as cp:
            for block in _rows(args.rows, args.days, tags, args.readers, start, args.seed):
                cp.write(block)
        took = time.perf_counter() - t0
        conn.execute("ANALYZE sightings")
        chunks = conn.execute("SELECT count(*) FROM timescaledb_information.chunks "
                              "WHERE hypertable_name = 'sightings'").fetchone()
    return {"rows": args.rows, "tags": tags, "load_s": round(took, 1),
            "load_rows_per_s": round(args.rows / took), "chunks": chunks[0] if chunks else None}


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="pak bench trail_query", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--readers", type=int, default=2000)
    p.add_argument("--rows-per-tag", type=int, default=150,
                   help="sightings per tag over the whole window (default 150: ~5 a day)")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--db", default=SHARED_PG,
                   help="PostgreSQL server (a scratch database is made on it and dropped)")
    args = p.parse_args(argv)
    if args.rows < args.days:
        raise BenchError("--rows must be at least --days")
    start = datetime(2026, 10, 1, tzinfo=UTC)
    until = start + timedelta(days=args.days)

    from tracker.storage import open_storage
    from tracker.trails.queries import trail

    with scratch_postgres(args.db) as url:
        loaded = _load(url, args, start)
        rng = random.Random(args.seed + 2)
        picks = [_tag(rng.randrange(loaded["tags"])) for _ in range(args.queries)]
        with open_storage(url) as st:
            readers = {r.reader_id: r for r in st.readers()}
            for tag in picks[:20]:  # warm the pool and the prepared statements
                st.sightings(tag_id=tag, since=start, until=until)

            def timed(fn: Any) -> list[float]:
                out = []
                for tag in picks:
                    t0 = time.perf_counter()
                    got = fn(tag)
                    out.append((time.perf_counter() - t0) * 1000)
                    sizes.append(len(got.passes) if hasattr(got, "passes") else len(got))
                return out

            def one_trail(tag: str) -> Any:
                t = trail(st, tag_id=tag, since=start, until=until,
                          trip_gap=timedelta(minutes=30), max_speed_kmh=120, readers=readers)
                if t.tag_id != tag:
                    raise BenchError(f"trail of {tag} came back as {t.tag_id}")
                return t

            sizes: list[int] = []
            first_ms = timed(one_trail)  # each tag's first query: its pages may not be cached
            sizes.clear()
            q_ms = timed(lambda tag: st.sightings(tag_id=tag, since=start, until=until))
            rows_per_trail = statistics.mean(sizes)
            t_ms = timed(one_trail)
    return {
        **loaded,
        "days": args.days,
        "queries": args.queries,
        "rows_per_trail": round(rows_per_trail, 1),
        "trail_first_ms": {"p50": round(statistics.median(first_ms), 2),
                           "p99": round(_pct(first_ms, 99), 2), "max": round(max(first_ms), 2)},
        "storage_query_ms": {"p50": round(statistics.median(q_ms), 2),
                             "p99": round(_pct(q_ms, 99), 2), "max": round(max(q_ms), 2)},
        "trail_ms": {"p50": round(statistics.median(t_ms), 2), "p99": round(_pct(t_ms, 99), 2),
                     "max": round(max(t_ms), 2)},
        "goal": "trail of one tag over 30 days, 10 million rows: p99 <= 10 ms",
        "goal_met": max(_pct(t_ms, 99), _pct(first_ms, 99)) <= 10.0
        and args.rows >= 10_000_000,
    }
