"""``pak sim``: the simulators' command line. ``pak sim reader`` plays one reader device.

Subcommands are a registry (name -> ``module:function`` taking argv), so a simulator adds one
line here and keeps its code in its own module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from firmware_sim.devices.base import SimTag
from firmware_sim.faults import FaultConfig, Faults
from firmware_sim.pty_reader import PtyReader, ReaderOptions, SentLog, build_pool, parse_tag
from firmware_sim.tag_schedule import TagSchedule
from pak.errors import ConfigError
from pak.logs import event, setup_logging
from pak.timefmt import format_time, utcnow

__all__ = ["SUBCOMMANDS", "main", "reader_main", "reader_options"]

# name -> (module:function taking argv and returning an exit status, one-line description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "reader": ("firmware_sim.cli:reader_main",
               "one simulated reader on a pseudo-terminal (or, mr7901, dialling a gateway)"),
    "city": ("firmware_sim.city_cli:main",
             "a city of vehicles passing readers, published as gateways' sightings over MQTT"),
}

_DRIVERS = ("r2000", "chafon", "mr7901", "em4100")
_STATION_GRACE = 1.0  # seconds a --count station keeps running to report its last tags

log = logging.getLogger("firmware_sim.station")

_READER_EPILOG = """\
The first line on stdout is the pty's path (e.g. /dev/pts/7); each re-appearance prints the
new one. Logs go to stderr. Runs until SIGINT/SIGTERM, --duration or --count; SIGUSR1 forces
a disconnect now (same kind as --disconnect-every).

tags:
  --tag E200301666130121155074EF:2 reads that EPC on antenna 2; --random N adds N random ids in
  the driver's form. Without --dwell all tags stay in range; with it, --visible tags are in
  range at a time, each for --dwell seconds, then the next waiting tag replaces it (a lone tag
  is heard for DWELL s, then not for DWELL s), so sightings open and close.
  Without --tag and --random: 5 random tags.

ground truth (--log-sent FILE, JSON lines):
  {"event":"read","t","seq","tag_id","antenna","raw","corrupted","dropped","delivered"},
  "enter"/"leave" of tags, "connect"/"disconnect" of the line. raw is the frame before faults.

examples:
  pak sim reader --driver r2000 --link /tmp/reader0 --tag E200301666130121155074EF --rate 20
  pak sim reader --driver chafon --model uhfreader18 --random 50 --dwell 4 --visible 3
  pak sim reader --driver em4100 --count 100 --capture /tmp/em.bin --log-sent /tmp/em.jsonl
  pak sim reader --driver r2000 --corrupt 0.05 --garbage 0.1 --chunk --echo
  pak sim reader --driver r2000 --link /tmp/r0 --disconnect-every 30 --reappear
  pak sim reader --driver mr7901 --connect 127.0.0.1:4900 --random 20"""


def _probability(text: str) -> float:
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return p


def _positive(text: str) -> float:
    x = float(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return x


def _non_negative(text: str) -> float:
    x = float(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return x


def _reader_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pak sim reader",
        description="A simulated reader: opens a pseudo-terminal (or, for mr7901, dials the "
                    "gateway's TCP server), answers the gateway's commands, and reports tags.",
        epilog=_READER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--driver", required=True, choices=_DRIVERS, help="the protocol to play")
    p.add_argument("--model", help="reader model (default: the driver's first)")
    where = p.add_argument_group("where")
    where.add_argument("--link", type=Path, metavar="PATH",
                       help="keep a symlink to the pty here (as /dev/serial/by-id/ does)")
    where.add_argument("--connect", metavar="HOST:PORT",
                       help="mr7901 only: dial the gateway's station server as a real station "
                            "does (without it an mr7901 only writes data reports to a pty, "
                            "which is handy for captures)")
    where.add_argument("--device-id", default="861694034205896", metavar="ID",
                       help="mr7901: the station's device id (default: the manual's)")
    tags = p.add_argument_group("tags")
    tags.add_argument("--tag", action="append", default=[], metavar="ID[:ANT]",
                      help="a tag in range (repeatable); hex id, optional 1-based antenna")
    tags.add_argument("--random", type=int, default=None, metavar="N",
                      help="N more tags with random ids")
    tags.add_argument("--antennas", type=int, default=1, metavar="N",
                      help="random tags get an antenna in 1..N (default 1)")
    tags.add_argument("--seed", type=int, help="seed for tags and faults (default: random)")
    tags.add_argument("--rate", type=_non_negative, default=10.0, metavar="R",
                      help="tag reads per second (default 10; 0: answer commands only)")
    tags.add_argument("--per-round", type=int, default=1, metavar="K",
                      help="tags per report / inventory round (default 1)")
    tags.add_argument("--dwell", type=_positive, metavar="S",
                      help="seconds a tag stays in range before the next replaces it")
    tags.add_argument("--visible", type=int, default=1, metavar="K",
                      help="tags in range at once with --dwell (default 1)")
    stop = p.add_argument_group("stop")
    stop.add_argument("--duration", type=_non_negative, metavar="S", help="run S seconds")
    stop.add_argument("--count", type=int, metavar="N", help="stop after N tag reads")
    faults = p.add_argument_group("faults")
    faults.add_argument("--corrupt", type=_probability, default=0.0, metavar="P",
                        help="flip a byte in a frame with probability P")
    faults.add_argument("--garbage", type=_probability, default=0.0, metavar="P",
                        help="random garbage before a frame with probability P")
    faults.add_argument("--drop", type=_probability, default=0.0, metavar="P",
                        help="a frame loses one byte with probability P")
    faults.add_argument("--chunk", action="store_true",
                        help="random small writes with short pauses")
    faults.add_argument("--echo", action="store_true",
                        help="echo received commands back (RS-485 adapters)")
    faults.add_argument("--disconnect-every", type=_positive, metavar="S",
                        help="a disconnect every S seconds")
    faults.add_argument("--outage", type=_non_negative, default=1.0, metavar="S",
                        help="how long a disconnect lasts (default 1 s)")
    faults.add_argument("--reappear", action="store_true",
                        help="a disconnect closes the pty and a NEW one appears behind --link "
                             "(USB re-enumeration); without it the line only goes dead")
    out = p.add_argument_group("output")
    out.add_argument("--capture", type=Path, metavar="FILE",
                     help="every byte sent to the host, raw")
    out.add_argument("--log-sent", type=Path, metavar="FILE",
                     help="ground truth: every tag read sent, as JSON lines")
    out.add_argument("--log-level", default="info",
                     choices=("debug", "info", "warning", "error"))
    out.add_argument("--log-format", default="text", choices=("text", "json"))
    return p


def reader_options(args: argparse.Namespace) -> ReaderOptions:
    """The runner's options from parsed flags (refuses inconsistent ones)."""
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    for name in ("random", "per_round", "visible", "antennas"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "random" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} is too small: {v}")
    if args.connect and args.driver != "mr7901":
        raise ConfigError("--connect is for mr7901 stations; other readers sit on a serial port")
    if args.connect and (args.link or args.reappear):
        raise ConfigError("--link and --reappear are for pty readers, not --connect")
    tags = [parse_tag(t) for t in args.tag]
    random_tags = args.random if args.random is not None else (0 if tags else 5)
    faults = FaultConfig(corrupt=args.corrupt, garbage=args.garbage, drop=args.drop,
                         chunk=args.chunk, echo=args.echo,
                         disconnect_every=args.disconnect_every, outage=args.outage,
                         reappear=args.reappear)
    return ReaderOptions(
        driver=args.driver, model=args.model, tags=tags, random_tags=random_tags,
        antennas=args.antennas, seed=args.seed, rate=args.rate, per_round=args.per_round,
        duration=args.duration, count=args.count, dwell=args.dwell, visible=args.visible,
        faults=faults, link=args.link, capture=args.capture, log_sent=args.log_sent)


def reader_main(argv: Sequence[str]) -> int:
    parser = _reader_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    setup_logging(args.log_level, args.log_format)
    opts = reader_options(args)
    if args.connect:
        return _run_station(opts, args.connect, args.device_id)
    return PtyReader(opts, stdout=sys.stdout).run()


def _run_station(opts: ReaderOptions, target: str, device_id: str) -> int:
    """``--connect``: an MR7901 station dialling the gateway (firmware_sim/station.py), with
    the tags, rate, dwell and faults of a pty reader. Its ground truth logs the tags the
    station heard ({"event": "heard", ...}): it queues them and reports them once online."""
    from firmware_sim.devices.mr7901 import MR7901Device
    from firmware_sim.station import run_station

    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--connect {target!r}: expected HOST:PORT")
    if opts.capture or opts.faults.echo:
        raise ConfigError("--capture and --echo are for pty readers, not --connect")
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 32)
    device = MR7901Device(rng=random.Random(f"{seed}:device"), device_id=device_id)
    pool = build_pool(opts, device, random.Random(f"{seed}:tags"))
    schedule = TagSchedule(pool, dwell=opts.dwell, visible=opts.visible, start=time.monotonic())
    sent = SentLog(opts.log_sent)
    stop = threading.Event()
    heard = 0

    def source() -> list[SimTag]:
        nonlocal heard
        stamp = format_time(utcnow())
        for ev in schedule.update(time.monotonic()):
            sent.write({"event": ev.kind, "t": stamp, "tag_id": ev.tag.tag_id,
                        "antenna": ev.tag.antenna})
        want = opts.per_round if opts.count is None else min(opts.per_round,
                                                              opts.count - heard)
        tags = schedule.next_tags(want) if want > 0 else []
        heard += len(tags)
        for t in tags:
            sent.write({"event": "heard", "t": stamp, "tag_id": t.tag_id, "antenna": t.antenna})
        sent.flush()
        if tags and opts.count is not None and heard >= opts.count:
            # Give the station a moment to report (and have acknowledged) the last tags.
            threading.Timer(_STATION_GRACE, stop.set).start()
        return tags

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    timer = threading.Timer(opts.duration, stop.set) if opts.duration is not None else None
    if timer:
        timer.daemon = True
        timer.start()
    faults = Faults(opts.faults, random.Random(f"{seed}:faults"))
    print(f"tcp://{host}:{port_text}", flush=True)
    event(log, logging.INFO, "sim_station_start", connect=target, device_id=device_id,
          tags=len(pool), seed=seed)
    try:
        stats = run_station((host, int(port_text)), device_id, source, stop,
                            rate=opts.rate / opts.per_round, faults=faults,
                            disconnect_every=opts.faults.disconnect_every, seed=seed)
    finally:
        if timer:
            timer.cancel()
        sent.close()
    event(log, logging.INFO, "sim_station_stopped", heard=heard, **dict(stats))
    return 0


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: pak sim SUBCOMMAND [options]", "", "simulators:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in SUBCOMMANDS.items()]
    lines += ["", "'pak sim SUBCOMMAND --help' for its options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"pak sim: unknown simulator {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, _, func = SUBCOMMANDS[name][0].partition(":")
    fn: Callable[[Sequence[str]], int | None] = getattr(importlib.import_module(module), func)
    return int(fn(rest) or 0)
