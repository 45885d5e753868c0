"""Decode speed: TagReads per second on one core, per driver, against the reader's line rate.

The stream is what a bad roadside line delivers: the simulated device's own frames for random
tags (``read_frames``, several tags per inventory round), with garbage runs making up about
``--garbage`` of the bytes, cut into random chunks of 1-256 bytes. The timed part is the
gateway's whole decode path: the stream decoder (framing, resync, checksums) and
``driver.reads`` building every TagRead. Building the stream is not timed.

The line rate is the most reads a reader could send at its default baud:
``baud / (10 bits per byte * bytes per read)``, bytes per read counted on the clean stream
(summary frames and per-round overhead included). The ratio says how much faster than any
one reader the decoder is. An MR7901 station talks TCP (LAN or GPRS): its "line rate" is that of
its 115200-baud modem link, a yardstick rather than a limit. Single process, one thread: the
figure is per core.

    pak bench decode [--drivers r2000,chafon] [--reads 200000] [--garbage 0.1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from firmware_sim.devices import SimTag, device_class
from gateway.drivers import DRIVER_NAMES, Rejected, make_driver

__all__ = ["Stream", "build_stream", "decode_rate", "run"]

_NOW = datetime(2026, 11, 28, 6, 15, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Stream:
    chunks: list[bytes]
    reads: int  # TagReads the clean frames carry
    frame_bytes: int  # bytes of device frames (no garbage)
    garbage_bytes: int


def build_stream(driver: str, *, reads: int, garbage: float, tags_per_round: int,
                 seed: int, model: str | None = None) -> Stream:
    """Device frames for ``reads`` tag reads, garbage mixed in, cut into 1-256 byte chunks."""
    rng = random.Random(seed)
    device = device_class(driver)(model, rng=random.Random(seed + 1))
    population = [SimTag(device.random_tag_id(), antenna=rng.randint(1, 4)) for _ in range(64)]
    parts: list[bytes] = []
    frame_bytes = garbage_bytes = made = 0
    # Readers that only read when asked get the gateway's own start command before each round.
    start = b"".join(make_driver(driver, model).start_commands())
    while made < reads:
        n = min(tags_per_round, reads - made)
        if not device.inventory_running:
            device.on_host_bytes(start, _NOW)
        frames = device.read_frames(rng.sample(population, n), _NOW)
        made += n
        frame_bytes += len(frames)
        parts.append(frames)
        # Garbage in runs, sized so that it makes up `garbage` of all bytes on average.
        if garbage > 0:
            run_len = rng.randint(1, max(1, round(2 * len(frames) * garbage / (1 - garbage))))
            junk = rng.randbytes(run_len)
            garbage_bytes += len(junk)
            parts.append(junk)
    data = b"".join(parts)
    chunks = []
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 256)
        chunks.append(data[pos:pos + n])
        pos += n
    return Stream(chunks, made, frame_bytes, garbage_bytes)


def decode_rate(driver_name: str, stream: Stream, model: str | None = None) -> tuple[int, float]:
    """Decode the stream once: (TagReads built, seconds)."""
    driver = make_driver(driver_name, model)
    decoder = driver.decoder()
    reads_of = driver.reads
    feed = decoder.feed
    n = 0
    t0 = time.perf_counter()
    for chunk in stream.chunks:
        for item in feed(chunk):
            if not isinstance(item, Rejected):
                n += len(reads_of(item))
    decoder.flush()
    return n, time.perf_counter() - t0


def _one_driver(name: str, args: argparse.Namespace) -> dict[str, Any]:
    stream = build_stream(name, reads=args.reads, garbage=args.garbage,
                          tags_per_round=args.tags_per_round, seed=args.seed)
    best = float("inf")
    decoded = 0
    for _ in range(args.repeat):
        decoded, secs = decode_rate(name, stream)
        best = min(best, secs)
    rate = decoded / best if best > 0 else 0.0
    driver = make_driver(name)
    baud = driver.default_baud
    bytes_per_read = stream.frame_bytes / stream.reads
    line_rate = baud / (10 * bytes_per_read)
    total = stream.frame_bytes + stream.garbage_bytes
    return {
        "reads_per_s": round(rate),
        "reads_sent": stream.reads,
        "reads_decoded": decoded,
        "intact_fraction": round(decoded / stream.reads, 4),
        "garbage_fraction": round(stream.garbage_bytes / total, 4),
        "bytes_per_read": round(bytes_per_read, 2),
        "transport": driver.transport,
        "baud": baud,
        "line_rate_reads_per_s": round(line_rate, 1),
        "ratio_to_line_rate": round(rate / line_rate, 1),
        "seconds": round(best, 4),
    }


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="pak bench decode", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drivers", default=",".join(DRIVER_NAMES),
                   help="comma-separated drivers (default: all)")
    p.add_argument("--reads", type=int, default=200_000, help="tag reads in the stream")
    p.add_argument("--garbage", type=float, default=0.10, help="fraction of garbage bytes")
    p.add_argument("--tags-per-round", type=int, default=8,
                   help="tags per inventory round / report (default 8)")
    p.add_argument("--repeat", type=int, default=3, help="runs per driver; the best counts")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0 <= args.garbage < 1:
        p.error("--garbage must be in [0, 1)")
    names = [n.strip() for n in args.drivers.split(",") if n.strip()]
    unknown = [n for n in names if n not in DRIVER_NAMES]
    if unknown:
        p.error(f"unknown drivers: {', '.join(unknown)}")
    results: dict[str, Any] = {}
    for name in names:
        try:
            results[name] = _one_driver(name, args)
        except ImportError as e:  # a driver or device not written yet
            results[name] = {"error": f"not available: {e}"}
    return {
        "goal": "r2000 >= 500000 reads/s on one core",
        "chunking": "random 1-256 bytes",
        "drivers": results,
    }
