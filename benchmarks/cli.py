"""``pak bench``: list and run the benchmarks, print their results as JSON.

    pak bench                 run every benchmark with its defaults (one JSON line each)
    pak bench --list          the benchmarks and what they measure
    pak bench NAME [ARGS...]  one benchmark; ARGS go to it (pak bench NAME --help)

To add a benchmark: a module in ``benchmarks/`` with ``run(argv) -> dict``, and one line in
:data:`BENCHMARKS`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson

__all__ = ["BENCHMARKS", "main", "run_benchmark"]

# name -> (module with run(argv) -> dict, one-line description)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "decode": ("benchmarks.decode",
               "driver decode speed: TagReads/s per core per driver vs. the line rate"),
    "gateway": ("benchmarks.gateway",
                "gateway CPU/RSS at 500 reads/s, open-sighting latency, drain after an outage"),
    "prediction": ("benchmarks.prediction",
                   "next-reader prediction accuracy on the simulated city"),
    "alerts": ("benchmarks.alerts",
               "stolen-tag alert latency: pty -> gateway -> broker -> tracker -> subscriber"),
    "trail_query": ("benchmarks.trail_query",
                    "trail query of one tag over 30 days in a hypertable of 10M sightings"),
    "ingest": ("benchmarks.ingest",
               "raw COPY vs MQTT + pak tracker into TimescaleDB (and SQLite), sightings/s"),
}


def _usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = ["usage: pak bench [--list] [NAME [ARGS...]]", "",
             "Run benchmarks and print their results as JSON (no NAME: all, one line each).", "",
             "benchmarks:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in BENCHMARKS.items()]
    lines += ["", "'pak bench NAME --help' shows the options of one benchmark."]
    return "\n".join(lines)


def _load(name: str) -> Callable[[Sequence[str]], dict[str, Any]]:
    module = importlib.import_module(BENCHMARKS[name][0])
    fn: Callable[[Sequence[str]], dict[str, Any]] = module.run
    return fn


def run_benchmark(name: str, argv: Sequence[str] = ()) -> dict[str, Any]:
    """Run one benchmark; its result with the benchmark's name first."""
    result = _load(name)(list(argv))
    return {"benchmark": name, **result}


def _print(result: dict[str, Any], pretty: bool) -> None:
    opts = orjson.OPT_INDENT_2 if pretty else 0
    sys.stdout.write(orjson.dumps(result, option=opts, default=str).decode() + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args and args[0] in ("--list", "list"):
        for name, (_, desc) in BENCHMARKS.items():
            print(f"{name}\t{desc}")
        return 0
    if not args:
        failed = 0
        for name in BENCHMARKS:
            try:
                _print(run_benchmark(name), pretty=False)
            except ModuleNotFoundError as e:
                print(f"pak bench {name}: skipped, not available ({e.name})", file=sys.stderr)
            except Exception as e:  # one broken benchmark must not hide the others' figures
                print(f"pak bench {name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    name, rest = args[0], args[1:]
    if name not in BENCHMARKS:
        print(f"pak bench: unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        result = run_benchmark(name, rest)
    except SystemExit as e:  # the benchmark's argparse: --help or a usage error
        return int(e.code or 0)
    _print(result, pretty=True)
    return 0
