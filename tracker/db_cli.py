"""``pak db``: database tasks for the centre's storage.

    pak db migrate   --db URL              apply the numbered migrations not yet applied
    pak db info      --db URL [--json]     backend, migrations, TimescaleDB version and
                                           license, hypertables, row counts
    pak db retention --db URL --days N     copy evidence, then drop sightings older than N days

``--db`` defaults to the environment variable PAK_DB_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pak.errors import ConfigError
from pak.logs import setup_logging

__all__ = ["main"]

_DB_HELP = ("storage URL: sqlite:///abs/path.db, sqlite://relative.db or "
            "postgresql://user@host:port/dbname (default: $PAK_DB_URL)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pak db", description="Database tasks of the centre's storage (SQLite or "
        "PostgreSQL + TimescaleDB).",
        epilog="Services migrate at start-up too; 'pak db migrate' is safe to run at any "
               "time and from two places at once.")
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=description)
        sp.add_argument("--db", metavar="URL", default=None, help=_DB_HELP)
        sp.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
        return sp

    add("migrate", "apply pending migrations",
        "Apply the numbered migrations not yet applied (idempotent). Prints their names.")
    info = add("info", "show backend, migrations, TimescaleDB version and license, row counts",
               "Show what the database is and holds.")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    ret = add("retention", "copy evidence, then drop old sightings",
              "Copy sightings older than --days that an active watchlist case or an open "
              "alert needs into evidence_sightings, then drop the older sightings "
              "(drop_chunks with the Apache-only TimescaleDB; policies with the timescale "
              "license; DELETE on SQLite). Prints what it did as JSON.")
    ret.add_argument("--days", type=float, required=True, metavar="N",
                     help="keep sightings of the last N days")
    imp = add("import", "import the readers and vehicle registers (JSON or CSV)",
              "Readers: reader_id, name, latitude, longitude [, bearings, timezone]. Fleet: "
              "vehicle_id, plate, tag_id [, owner, kind, colour, key_tag_id, "
              "unaccompanied_check, valid_from]. Re-importing a register changes nothing.")
    imp.add_argument("--readers", type=Path, metavar="FILE", help="readers register")
    imp.add_argument("--fleet", type=Path, metavar="FILE", help="vehicle register")
    return p


def _db_url(arg: str | None, env: Mapping[str, str]) -> str:
    url = arg or env.get("PAK_DB_URL")
    if not url:
        raise ConfigError("--db is required (or set PAK_DB_URL)")
    return url


def _print_info(info: dict[str, Any]) -> None:
    print(f"backend:    {info['backend']}  ({info['url']})")
    if info["backend"] == "timescaledb":
        print(f"server:     PostgreSQL {info['server_version']}")
        print(f"timescaledb: {info['timescaledb_version'] or 'not installed in this database'}"
              f"  license: {info['timescaledb_license']}")
        for h in info["hypertables"]:
            print(f"hypertable: {h['name']} ({h['chunks']} chunks, compression "
                  f"{'on' if h['compression'] else 'off'})")
    else:
        print(f"sqlite:     {info['sqlite_version']}  journal_mode: {info['journal_mode']}")
    print(f"migrations: {len(info['migrations_applied'])} applied"
          + (f": {', '.join(info['migrations_applied'])}" if info["migrations_applied"] else ""))
    if info["migrations_pending"]:
        print(f"pending:    {', '.join(info['migrations_pending'])}  (run: pak db migrate)")
    if info["counts"]:
        print("rows:")
        for table, n in info["counts"].items():
            print(f"  {table:<20} {n:>12,}")


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.log_level)
    url = _db_url(args.db, os.environ if env is None else env)
    from tracker.storage import open_storage

    with open_storage(url) as storage:
        if args.task == "migrate":
            done = storage.migrate()
            for name in done:
                print(f"applied {name}")
            if not done:
                print("up to date: no migration pending")
        elif args.task == "info":
            info = storage.info()
            if args.json:
                print(json.dumps(info, indent=2, default=str))
            else:
                _print_info(info)
        elif args.task == "import":
            from tracker.registry import import_fleet, import_readers

            if not (args.readers or args.fleet):
                raise ConfigError("pak db import: give --readers FILE and/or --fleet FILE")
            storage.migrate()
            if args.readers:
                print(f"readers: {import_readers(storage, args.readers)} imported")
            if args.fleet:
                print(f"vehicles: {import_fleet(storage, args.fleet)} imported")
        elif args.task == "retention":
            result = storage.retention(args.days, now=datetime.now(UTC))
            print(json.dumps(result, default=str))
    return 0
