"""Where vehicles go next, learned from storage: the tracker's copy of the transition model.

At start-up (in the background: the tracker takes sightings meanwhile, and a stolen hit raised
before the model is ready simply carries no prediction) and then every ``refresh_s``, the
sightings of the last ``days`` days are streamed from storage in time order, turned into
trails with :func:`tracker.trails.trail.build_trail` and fed to a fresh
:class:`tracker.trails.prediction.TransitionModel`; the new model replaces the old one whole.

Streaming keeps memory to the tags on the move: a tag's sightings are collected until it has
been quiet for longer than ``trip_gap`` (its trip is over: a later sighting would start a new
trip anyway), then become a trail and are dropped. ``max_sightings`` caps one learning run.

Learning reads millions of rows and builds trails: in the tracker's own process it would hold
the interpreter for a minute, and every incoming sighting (and every stolen-vehicle alert) would
wait. So the tracker runs it as a child process, ``python -m tracker.trails.movement --db URL ...``,
which prints the model as JSON (:meth:`TransitionModel.to_json`); only a private in-memory
database is learned from in-process.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from pak.logs import event
from pak.timefmt import format_time, parse_time, utcnow
from pak.types import Sighting
from tracker.storage.base import Storage, StorageError
from tracker.storage.records import Reader
from tracker.trails.prediction import TransitionModel, learn
from tracker.trails.trail import Trail, build_trail

__all__ = ["MovementModel", "learn_from_sightings", "main", "prediction_json"]

log = logging.getLogger("pak.tracker.movement")


def learn_from_sightings(sightings: Iterable[Sighting], readers: Mapping[str, Reader], *,
                         trip_gap: timedelta, min_support: int = 5,
                         max_sightings: int | None = None) -> tuple[TransitionModel, int]:
    """A model learned from sightings given in ``first_seen`` order; also how many were used."""
    model = TransitionModel(min_support=min_support)
    open_tags: dict[str, list[Sighting]] = {}
    last_seen: dict[str, datetime] = {}
    used = 0

    def flush(tags: Iterable[str]) -> None:
        trails: list[Trail] = []
        for tag in list(tags):
            ss = open_tags.pop(tag)
            last_seen.pop(tag, None)
            if len(ss) >= 2:
                trails.append(build_trail(tag, ss, readers, trip_gap=trip_gap))
        learn(model, trails)

    sweep_every = 50_000
    for s in sightings:
        if max_sightings is not None and used >= max_sightings:
            break
        used += 1
        open_tags.setdefault(s.tag_id, []).append(s)
        prev = last_seen.get(s.tag_id)
        if prev is None or s.last_seen > prev:
            last_seen[s.tag_id] = s.last_seen
        if used % sweep_every == 0:
            horizon = s.first_seen - trip_gap
            flush([t for t, t_last in last_seen.items() if t_last < horizon])
    flush(list(open_tags))
    return model, used


def prediction_json(model: TransitionModel, reader_id: str, prev: str | None,
                    departed: datetime, readers: Mapping[str, Reader],
                    k: int = 3) -> list[dict[str, Any]]:
    """The ``k`` likeliest next readers after ``reader_id`` (coming from ``prev``), each with
    its probability, where it is, and when the vehicle should get there (median, and the
    p10-p90 window of the travel times seen on that hop)."""
    out: list[dict[str, Any]] = []
    for n in model.predict(reader_id, prev, k):
        r = readers.get(n.reader_id)
        eta = n.eta(departed)
        out.append({
            "reader_id": n.reader_id,
            "name": r.name if r else None,
            "latitude": r.latitude if r else None,
            "longitude": r.longitude if r else None,
            "probability": round(n.probability, 4),
            "support": n.support,
            "expected_at": None if eta["expected"] is None else format_time(eta["expected"]),
            "earliest": None if eta["earliest"] is None else format_time(eta["earliest"]),
            "latest": None if eta["latest"] is None else format_time(eta["latest"]),
        })
    return out


class MovementModel:
    """The current model, relearned from storage in a background thread.

    Warm-up: while the model has seen fewer than ``warmup_trips`` trips (a new site, the demo:
    the first run learns from an empty table), it is relearned every ``warmup_s`` instead of
    every ``refresh_s``, so predictions appear within minutes of traffic starting; a
    prediction asked of an empty model also wakes the learner (at most once per ``warmup_s``).
    """

    def __init__(self, storage: Storage, readers: Callable[[], Mapping[str, Reader]], *,
                 days: float = 7.0, refresh_s: float = 6 * 3600.0,
                 trip_gap: timedelta = timedelta(minutes=20),
                 max_sightings: int = 5_000_000, min_support: int = 5,
                 warmup_trips: int = 2000, warmup_s: float = 60.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._storage = storage
        self._readers = readers
        self.days = days
        self.refresh_s = refresh_s
        self.trip_gap = trip_gap
        self.max_sightings = max_sightings
        self.min_support = min_support
        self._clock = clock
        self.model: TransitionModel | None = None
        self.learned_at: datetime | None = None
        self.learned_from = 0
        self.warmup_trips = warmup_trips
        self.warmup_s = warmup_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.child_timeout_s = max(600.0, refresh_s)

    def _in_child(self) -> bool:
        url = getattr(self._storage, "url", "")
        return bool(url) and ":memory:" not in url

    def _learn_here(self, now: datetime) -> tuple[TransitionModel, int]:
        it = self._storage.iter_sightings(since=now - timedelta(days=self.days), until=now)
        try:
            return learn_from_sightings(it, self._readers(), trip_gap=self.trip_gap,
                                        min_support=self.min_support,
                                        max_sightings=self.max_sightings)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # a generator holding a database connection lets it go

    def _learn_in_child(self, now: datetime) -> tuple[TransitionModel, int]:
        cmd = [sys.executable, "-m", "tracker.trails.movement", "--db", self._storage.url,
               "--until", format_time(now), "--days", str(self.days),
               "--trip-gap-s", str(self.trip_gap.total_seconds()),
               "--max-sightings", str(self.max_sightings),
               "--min-support", str(self.min_support)]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=self.child_timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise StorageError(f"learning took longer than {self.child_timeout_s:.0f} s") \
                from None
        if done.returncode != 0:
            raise StorageError("learning failed: "
                               + done.stderr.decode(errors="replace").strip()[-300:])
        obj = orjson.loads(done.stdout)
        return TransitionModel.from_json(obj["model"]), int(obj["sightings"])

    def relearn(self) -> TransitionModel:
        """Learn from the last ``days`` days now (blocking); the new model replaces the old."""
        now = self._clock()
        t0 = time.perf_counter()
        model, used = self._learn_in_child(now) if self._in_child() else self._learn_here(now)
        self.model, self.learned_at, self.learned_from = model, now, used
        self.ready.set()
        event(log, logging.INFO, "movement_model_learned", sightings=used,
              trips=model.trips_seen, readers=len(model.first),
              took_s=round(time.perf_counter() - t0, 2))
        return model

    def predict(self, reader_id: str, prev: str | None, departed: datetime,
                k: int = 3) -> list[dict[str, Any]]:
        model = self.model
        if model is None or model.trips_seen == 0:
            self.relearn_soon()
        if model is None:
            return []
        return prediction_json(model, reader_id, prev, departed, self._readers(), k)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pak-movement-model",
                                            daemon=True)
            self._thread.start()

    def relearn_soon(self) -> None:
        """Ask the learning thread for a run now, unless the last one is under ``warmup_s``
        old (a stream of hits on an empty model does not become a stream of runs)."""
        last = self.learned_at
        if last is None or (self._clock() - last).total_seconds() >= self.warmup_s:
            self._wake.set()

    def next_wait(self) -> float:
        """Seconds until the next run: the warm-up interval while the model knows few trips."""
        model = self.model
        if model is None or model.trips_seen < self.warmup_trips:
            return min(self.warmup_s, self.refresh_s)
        return self.refresh_s

    def _run(self) -> None:
        wait = 0.0
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.relearn()
                wait = self.next_wait()
            except StorageError as e:
                event(log, logging.WARNING, "movement_model_failed", error=str(e)[:300],
                      action="retrying in a minute")
                wait = min(60.0, self.refresh_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


def main(argv: Sequence[str] | None = None) -> int:
    """The learning child: read storage, print ``{"sightings": N, "model": {...}}``."""
    p = argparse.ArgumentParser(prog="python -m tracker.trails.movement",
                                description="Learn the movement model from storage; print it "
                                            "as JSON (the tracker runs this itself).")
    p.add_argument("--db", required=True)
    p.add_argument("--until", required=True, help="RFC 3339 end of the window")
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--trip-gap-s", type=float, default=1200.0)
    p.add_argument("--max-sightings", type=int, default=5_000_000)
    p.add_argument("--min-support", type=int, default=5)
    args = p.parse_args(argv)
    from tracker.storage import open_storage

    until = parse_time(args.until)
    with open_storage(args.db) as st:
        readers = {r.reader_id: r for r in st.readers()}
        it = st.iter_sightings(since=until - timedelta(days=args.days), until=until)
        model, used = learn_from_sightings(it, readers,
                                           trip_gap=timedelta(seconds=args.trip_gap_s),
                                           min_support=args.min_support,
                                           max_sightings=args.max_sightings)
    sys.stdout.buffer.write(orjson.dumps({"sightings": used, "model": model.to_json()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
