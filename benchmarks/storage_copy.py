"""Storage write rates: raw binary COPY into a hypertable shaped like ``sightings`` against
``Storage.write_batch`` (staging COPY + one merging upsert), and SQLite's rate.

    .venv/bin/python -m benchmarks.storage_copy [--n 200000] [--batch 5000] [--gateways 500]

Each PostgreSQL measurement runs in a database of its own, created on ``--pg`` and dropped
afterwards; each figure is the best of ``--repeat`` runs; prints one JSON object. The
functions are also the yardstick of the ingest benchmark: ``raw_copy_rate`` (the "raw COPY"
the pipeline is compared with), ``write_batch_rate`` and ``make_sightings`` (traffic shaped
like a city's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pak.types import Sighting
from tracker.storage import open_storage

__all__ = ["make_sightings", "raw_copy_rate", "with_open_messages", "write_batch_rate"]

DEFAULT_START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def make_sightings(n: int, *, gateways: int, seed: int, start: datetime = DEFAULT_START,
                   rate: float = 5000.0, vehicles: int | None = None) -> list[Sighting]:
    """``n`` closed sightings (distinct ids) as a city produces them at ``rate`` per second
    from ``start``: ``gateways`` gateways, one reader and one spool each, seq increasing per
    gateway; a fleet of ``vehicles`` EPC tags (default n/3, so tags recur) plus a few active
    tags; 1-2 of 4 antennas, dwell 0.2-8 s, RSSI and reads spread like real reads; a few
    flags; reader clocks a little off on some readers."""
    rng = random.Random(seed)
    fleet = vehicles or max(1, n // 3)
    tags = [f"E280{rng.getrandbits(80):020X}" for _ in range(fleet)]
    gw_ids = [f"gw-{i:04d}" for i in range(gateways)]
    spools = {g: uuid.UUID(int=rng.getrandbits(128)).hex[:16] for g in gw_ids}
    skew = {g: timedelta(seconds=rng.choice([0, 0, 0, -2, 3, 30])) for g in gw_ids}
    seqs = dict.fromkeys(gw_ids, 0)
    out: list[Sighting] = []
    step = 1.0 / rate
    for i in range(n):
        gw = gw_ids[rng.randrange(gateways)]
        seqs[gw] += 1
        first = start + timedelta(seconds=i * step + rng.random() * step)
        dwell = timedelta(milliseconds=rng.randint(200, 8000))
        active = rng.random() < 0.05
        first_ant = rng.randint(1, 4)
        ants = (first_ant,) if rng.random() < 0.7 else (first_ant, first_ant % 4 + 1)
        flags: tuple[str, ...] = ()
        if rng.random() < 0.02:
            flags = ("low_battery",)
        dbm = round(rng.uniform(-78.0, -38.0), 1)
        out.append(Sighting(
            gateway_id=gw, spool_id=spools[gw], seq=seqs[gw], state="closed",
            tag_id=(f"{rng.getrandbits(32):08X}" if active else tags[rng.randrange(fleet)]),
            tag_kind="active" if active else "epc", tag_type=0x31 if active else None,
            reader_id=f"rd-{gw[3:]}", first_seen=first, last_seen=first + dwell,
            reads=rng.randint(1, 40), antenna=first_ant, antennas=ants, rssi_max_dbm=dbm,
            rssi_max_raw=int((dbm + 100) * 2), flags=flags,
            reader_time=None if active else first + skew[gw],
        ))
    return out


def with_open_messages(closed: Sequence[Sighting], *, exit_after: float = 2.0
                       ) -> list[Sighting]:
    """The message stream gateways publish for these sightings: an ``open`` message at the
    first read and the ``closed`` one ``exit_after`` seconds after the last, in time order."""
    events: list[tuple[datetime, int, Sighting]] = []
    for s in closed:
        opened = s.replace(state="open", last_seen=s.first_seen, reads=1,
                           antennas=s.antennas[:1], rssi_max_dbm=None, rssi_max_raw=None)
        events.append((s.first_seen, 0, opened))
        events.append((s.last_seen + timedelta(seconds=exit_after), 1, s))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def raw_copy_rate(url: str, sightings: Sequence[Sighting]) -> float:
    """Rows/s of one binary COPY (explicit types) of ``sightings`` into a fresh hypertable
    shaped like ``sightings`` (same columns, unique key, indexes, 1-day chunks) in the
    PostgreSQL database ``url``, committed. The table is dropped afterwards; the database's
    own ``sightings`` is only used as the template (migrated if needed)."""
    import psycopg

    from tracker.storage.columns import SIGHTING_COLUMNS
    from tracker.storage.timescale import STAGE_TYPES, copy_row

    with open_storage(url) as storage:
        storage.migrate()
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE sightings INCLUDING DEFAULTS "
                     "INCLUDING CONSTRAINTS INCLUDING INDEXES)")
        try:
            conn.execute("SELECT create_hypertable(%s, by_range('first_seen', "
                         "INTERVAL '1 day'), create_default_indexes => false)", (table,))
            cols = ", ".join(SIGHTING_COLUMNS)
            t0 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(list(STAGE_TYPES))
                for s in sightings:
                    cp.write_row(copy_row(s))
            elapsed = time.perf_counter() - t0
            (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
            if count != len(sightings):
                raise RuntimeError(f"COPY stored {count} of {len(sightings)} rows")
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return len(sightings) / elapsed


def write_batch_rate(url: str, sightings: Sequence[Sighting], batch: int) -> float:
    """Messages/s through ``Storage.write_batch`` in batches of ``batch`` (each deduplicated
    and committed), into the ``sightings`` table of ``url`` (either backend; migrated if
    needed). Use a scratch database: the rows stay."""
    from tracker.storage import dedupe

    with open_storage(url) as storage:
        storage.migrate()
        chunks = [dedupe(sightings[i:i + batch]) for i in range(0, len(sightings), batch)]
        t0 = time.perf_counter()
        for chunk in chunks:
            storage.write_batch(chunk)
        elapsed = time.perf_counter() - t0
    return len(sightings) / elapsed


@contextlib.contextmanager
def _scratch_database(base_url: str) -> Iterator[str]:
    import psycopg

    name = f"pak_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(n: int, batch: int, gateways: int, pg: str, *, seed: int = 1,
        repeat: int = 3) -> dict[str, Any]:
    """Every rate measured ``repeat`` times (a fresh database each time) and reported as the
    best: the machine is shared, and the best run is the one least disturbed."""
    closed = make_sightings(n, gateways=gateways, seed=seed)
    stream = with_open_messages(closed)
    runs: dict[str, list[float]] = {}

    def pg_rate(key: str, fn: Any, *args: Any) -> None:
        with _scratch_database(pg) as url:
            runs.setdefault(key, []).append(fn(url, *args))

    for _ in range(repeat):  # interleaved, so a busy spell does not hit one figure only
        pg_rate("pg_raw_copy_rows_s", raw_copy_rate, closed)
        pg_rate("pg_write_batch_closed_rows_s", write_batch_rate, closed, batch)
        pg_rate("pg_write_batch_open_closed_msgs_s", write_batch_rate, stream, batch)
        with tempfile.TemporaryDirectory(prefix="pak-bench-") as d:
            runs.setdefault("sqlite_write_batch_closed_rows_s", []).append(
                write_batch_rate(f"sqlite://{d}/a.db", closed, batch))
            runs.setdefault("sqlite_write_batch_open_closed_msgs_s", []).append(
                write_batch_rate(f"sqlite://{d}/b.db", stream, batch))
    best = {k: max(v) for k, v in runs.items()}
    raw = best["pg_raw_copy_rows_s"]
    out: dict[str, Any] = {"n_sightings": n, "batch": batch, "gateways": gateways,
                           "repeat": repeat, **best}
    out["ratio_write_batch_closed_to_raw"] = best["pg_write_batch_closed_rows_s"] / raw
    out["pg_open_closed_sightings_s"] = best["pg_write_batch_open_closed_msgs_s"] / 2
    out["ratio_open_closed_sightings_to_raw"] = out["pg_open_closed_sightings_s"] / raw
    out["runs"] = {k: [round(x) for x in v] for k, v in runs.items()}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.storage_copy",
                                description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=200_000, help="sightings (default 200000)")
    p.add_argument("--batch", type=int, default=5000, help="write_batch size (default 5000)")
    p.add_argument("--gateways", type=int, default=500, help="gateway ids (default 500)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                   help="PostgreSQL to create scratch databases on")
    args = p.parse_args(argv)
    print(json.dumps(run(args.n, args.batch, args.gateways, args.pg, repeat=args.repeat),
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
