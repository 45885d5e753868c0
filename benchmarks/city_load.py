"""Background traffic for the end-to-end benchmarks: the simulated city's passages as the
sightings its readers' gateways would publish (an ``open`` when a vehicle arrives, a
``closed`` when it leaves, one message each, QoS 1), paced at a fixed rate, in a process of its
own (so the benchmark's timing thread never waits for the publisher's share of a GIL).

    python -m benchmarks.city_load --mqtt URL --topic-root ROOT --rate 5000 --duration 60

The day's passages are generated before the clock starts (a city of 40,000 vehicles takes a
few seconds), then sent in the city's order at ``rate`` sightings per second, stamped with the
time each is sent (the tracker sees current traffic). Prints one JSON line at the end:
sightings sent, seconds, the rate achieved, and how far behind schedule it fell.

Sending a city day in minutes compresses its time: one vehicle would be seen at readers
kilometres apart seconds apart, and the tracker would rightly flood the run with
``clone_suspect`` alerts that real traffic never makes. So by default every passage carries a
tag of its own (the readers, their load and the open/closed pattern stay the city's): the
tracker then checks each tag's history in storage as it would for a city of millions of
vehicles, each seen a few times an hour. ``--no-tag-per-passage`` keeps the fleet's tags.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import secrets
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType

import orjson

from firmware_sim.city import City
from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire import Topics, encode_sightings

__all__ = ["main"]

# (time s, order, pair, reader, tag, dwell s, antennas, state): ``pair`` is the order of the
# passage's open event, so its close finds the open's seq and first_seen
_Event = tuple[float, int, int, str, str, float, tuple[int, ...], str]


def city_events(city: City, n: int, *, tag_per_passage: bool = False) -> list[_Event]:
    """The first ``n`` open/closed events of a city day, in time order. With
    ``tag_per_passage`` each passage carries a tag of its own (see the module doc)."""
    out: list[_Event] = []
    pending: list[_Event] = []
    day = datetime(2026, 11, 2, tzinfo=UTC)
    counter = itertools.count()
    for p in city.passages(day, 1):
        if not p.heard:
            continue
        t = (p.at - day).total_seconds()
        while pending and pending[0][0] <= t:
            out.append(heapq.heappop(pending))
        order = next(counter)
        tag = f"B6{order:022X}" if tag_per_passage else p.tag_id
        out.append((t, order, order, p.reader_id, tag, p.dwell_s, p.antennas, "open"))
        heapq.heappush(pending, (t + p.dwell_s, next(counter), order, p.reader_id, tag,
                                 p.dwell_s, p.antennas, "closed"))
        if len(out) >= n:
            break
    while pending and len(out) < n:
        out.append(heapq.heappop(pending))
    return out[:n]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.city_load", description=__doc__)
    p.add_argument("--mqtt", required=True)
    p.add_argument("--topic-root", required=True)
    p.add_argument("--rate", type=float, default=5000.0, help="sightings per second")
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--vehicles", type=int, default=40_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tag-per-passage", action=argparse.BooleanOptionalAction, default=True,
                   help="give every passage a tag of its own (default), see the module doc")
    args = p.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from pak.broker_url import Brokers
    from pak.mqtt import CENTRE_BACKOFF, make_client

    city = City(vehicles=args.vehicles, seed=args.seed)
    events = city_events(city, int(args.rate * args.duration) + 1,
                         tag_per_passage=args.tag_per_passage)
    gw_of = {r.reader_id: r.gateway_id for r in city.readers}
    spool = {gw: "city-" + secrets.token_hex(4) for gw in gw_of.values()}
    seqs: dict[str, itertools.count[int]] = {gw: itertools.count(1) for gw in spool}
    open_at: dict[int, tuple[int, datetime]] = {}  # open event's order -> (seq, first_seen)
    topics = Topics(args.topic_root)
    c = make_client(Brokers.parse(args.mqtt), backoff=CENTRE_BACKOFF,
                    client_id=f"city-{secrets.token_hex(3)}")
    # paho walks its in-flight window on every PUBACK: a small one keeps this process light
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.connect_first()
    c.loop_start()
    sent = worst_behind = 0
    print(f"city_load_started events={len(events)} rate={args.rate}", file=sys.stderr,
          flush=True)
    t0 = time.monotonic()
    try:
        for i, (_, _, pair, reader, tag, dwell, antennas, state) in enumerate(events):
            if stop.is_set():
                break
            due = t0 + i / args.rate
            now_m = time.monotonic()
            if due > now_m:
                time.sleep(due - now_m)
            else:
                worst_behind = max(worst_behind, int((now_m - due) * 1000))
            gw = gw_of[reader]
            now = utcnow()
            if state == "open":
                seq = next(seqs[gw])
                open_at[pair] = (seq, now)
                first, last = now, now
            else:
                seq, first = open_at.pop(pair, (next(seqs[gw]), now))
                last = min(now, first + timedelta(seconds=dwell))
            s = Sighting(gw, spool[gw], seq, state, tag, "active", reader,  # type: ignore[arg-type]
                         first, last, 1 if state == "open" else max(1, int(dwell)),
                         tag_type=0x30, antenna=antennas[0] if antennas else None,
                         antennas=antennas[:1] if state == "open" else antennas)
            c.publish(topics.sightings(gw), encode_sightings(gw, spool[gw], [s], now), qos=1)
            sent += 1
    finally:
        took = time.monotonic() - t0
        c.loop_stop()
        c.disconnect()
    print(orjson.dumps({"sightings": sent, "messages": sent, "seconds": round(took, 2),
                        "rate": round(sent / took, 1) if took else None,
                        "worst_behind_ms": worst_behind}).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
