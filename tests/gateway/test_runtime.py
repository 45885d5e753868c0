"""The runtime in-process, with a stand-in link feeding reads and a real broker: open
sightings go out at once, new sightings overtake a draining backlog, a graceful stop keeps
open sightings, a suspect clock is marked, MQTT 3.1.1 works, health and metrics follow the
contract."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import BUILD_DATE, ClockCheck
from gateway.config import load_settings
from gateway.link import ReadSink
from gateway.runtime import Gateway
from pak.timefmt import parse_time, utcnow
from pak.types import TagRead
from tests import services
from tests.gateway.harness import Centre, spool_rows
from tests.support.wait import eventually
from tests.support.wire_schema import validate

pytestmark = [pytest.mark.mosquitto]


class FakeLink:
    """Stands in for SerialLink: the test calls ``feed``; ``status`` looks like a link's."""

    def __init__(self, sink: ReadSink, clock: Callable[[], datetime] = utcnow) -> None:
        self.sink = sink
        self.clock = clock
        self.reads = 0
        self.running = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self.running.set()  # as a real link, it reads only once the runtime runs it
        stop.wait()

    def status(self) -> dict[str, Any]:
        return {"state": "connected", "url": "fake://reader", "since": self.clock(),
                "reconnects": 0, "frames_ok": self.reads, "frames_bad": {"bad_crc": 1},
                "garbage_bytes": 3, "reads": self.reads, "echoes": 0}

    def feed(self, tag: str, antenna: int = 1) -> float:
        """One read now; returns time.time() of the hand-over."""
        self.reads += 1
        t = time.time()
        self.sink(TagRead("em4100", tag, "em4100", b"", antenna=antenna), "rd-1", self.clock())
        return t


@contextlib.contextmanager
def running(tmp_path: Path, mqtt_url: str, root: str, *extra: str,
            clock: Callable[[], datetime] = utcnow) -> Iterator[FakeLink]:
    settings = load_settings(["--gateway-id", "gw-rt", "--driver", "em4100", "--serial",
                              "fake://", "--spool", str(tmp_path / "spool"), "--mqtt", mqtt_url,
                              "--topic-root", root, "--health-every", "0.5",
                              "--republish-after", "5", *extra], env={})
    links: list[FakeLink] = []

    def make(sink: ReadSink) -> FakeLink:
        links.append(FakeLink(sink, clock))
        return links[0]

    gw = Gateway(settings, link_factory=make, clock=clock)
    stop = threading.Event()
    t = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    t.start()
    try:
        eventually(lambda: bool(links) and links[0].running.is_set(), 5, "the link running")
        yield links[0]
    finally:
        stop.set()
        t.join(15)
        assert not t.is_alive()


def open_arrivals(centre: Centre) -> dict[str, float]:
    """tag -> receive time of its first open message."""
    out: dict[str, float] = {}
    with centre.lock:
        for m in centre.messages:
            for s in m.sightings:
                if s["state"] == "open":
                    out.setdefault(s["tag_id"], m.at)
    return out


def test_open_sightings_go_out_at_once(tmp_path: Path, mqtt_url: str, topic_root: str) -> None:
    port = services.free_port()
    with Centre(mqtt_url, topic_root) as centre, \
            running(tmp_path, mqtt_url, topic_root, "--exit-after", "0.5",
                    "--metrics-listen", f"127.0.0.1:{port}") as link:
        centre.wait_connected()
        eventually(lambda: bool(centre.states), 5, "online state")
        sent = {}
        for i in range(40):
            tag = f"{i:010X}"
            sent[tag] = link.feed(tag)
            time.sleep(0.02)  # deliberately spaced, as a reader reports tags one by one
        eventually(lambda: len(open_arrivals(centre)) == 40, 5, "every open")
        got = open_arrivals(centre)
        lat_ms = sorted((got[t] - sent[t]) * 1000 for t in sent)
        # Goal p99 <= 20 ms (the benchmark measures it under load); here the median proves
        # that nothing waits to fill a batch.
        assert statistics.median(lat_ms) < 20, lat_ms
        eventually(lambda: len(centre.final()) == 40, 5, "every closed")
        eventually(lambda: (centre.last_health() or {}).get("counters", {}).get("reads") == 40,
                   5, "health counting")
        h = centre.last_health()
        assert h is not None
        validate("health", h)
        assert h["counters"]["frames_bad"] == {"bad_crc": 1} and h["readers"] == ["rd-1"]
        assert (h["spool"]["dropped_total"], h["spool"]["oldest_dropped"]) == (0, None)
        assert h["spool"]["exit_after_s"] == 0.5 and h["spool"]["max_duration_s"] > 0.5
        assert h["link"] == {"state": "connected", "url": "fake://reader",
                             "since": h["link"]["since"]}
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b'pak_gateway_reads_total{gateway_id="gw-rt"} 40' in metrics
        assert b'pak_gateway_frames_bad_total{gateway_id="gw-rt",reason="bad_crc"} 1' in metrics
    assert centre.states[-1]["state"] == "offline"
    centre.check_consistent()


def test_new_sightings_overtake_the_backlog(
        tmp_path: Path, private_broker: services.PrivateMosquitto, topic_root: str) -> None:
    private_broker.stop()
    backlog = 600
    # A narrow window and small messages make the drain take long enough to overtake.
    with running(tmp_path, private_broker.url, topic_root, "--exit-after", "0.2",
                 "--batch-max", "5", "--max-inflight", "1") as link:
        for i in range(backlog):
            link.feed(f"B{i:09X}")
        eventually(lambda: len(spool_rows(tmp_path / "spool")) == backlog
                   and set(spool_rows(tmp_path / "spool").values()) == {"closed"}, 20,
                   "the backlog spooled")
        private_broker.start()
        with Centre(private_broker.url, topic_root) as centre:
            eventually(lambda: any(s["state"] == "online" for s in centre.states), 15,
                       "the gateway back online", step=0.005)
            sent = {}
            for i in range(5):
                tag = f"F{i:09X}"
                sent[tag] = link.feed(tag)
            eventually(lambda: len(centre.final()) == backlog + 5, 60, "everything delivered")
            got = open_arrivals(centre)
            with centre.lock:
                backlog_done = max(m.at for m in centre.messages
                                   if m.sightings[0]["tag_id"].startswith("B"))
            for tag, t in sent.items():
                assert got[tag] < backlog_done, "a new sighting waited for the backlog"
                assert got[tag] - t < 0.5, f"open latency {got[tag] - t:.3f} s during the drain"
            centre.check_consistent()


def test_graceful_stop_closes_open_sightings_into_the_spool(tmp_path: Path,
                                                            topic_root: str) -> None:
    nobody = f"mqtt://127.0.0.1:{services.free_port()}"
    with running(tmp_path, nobody, topic_root, "--exit-after", "60") as link:
        link.feed("0A0B0C0D0E")
        link.feed("0A0B0C0D0E")
        eventually(lambda: spool_rows(tmp_path / "spool") != {}, 5, "the open sighting spooled")
        assert set(spool_rows(tmp_path / "spool").values()) == {"open"}
    assert set(spool_rows(tmp_path / "spool").values()) == {"closed"}


def test_suspect_clock_is_marked_over_mqtt_3_1_1(tmp_path: Path, mqtt_url: str,
                                                 topic_root: str) -> None:
    offset = utcnow() - datetime(1970, 1, 2, tzinfo=UTC)  # a box that booted without RTC

    def clock() -> datetime:
        return utcnow() - offset

    assert ClockCheck().check(clock()).suspect and clock() < BUILD_DATE
    with Centre(mqtt_url, topic_root) as centre, \
            running(tmp_path, mqtt_url, topic_root, "--exit-after", "0.3",
                    "--mqtt-protocol", "3.1.1", clock=clock) as link:
        centre.wait_connected()
        link.feed("00DEADBEEF")
        eventually(lambda: len(centre.final()) == 1, 5, "the sighting")
        with centre.lock:
            assert all(m.clock_suspect for m in centre.messages)
        (s,) = centre.final().values()
        assert parse_time(s["first_seen"]) < datetime(1970, 1, 3, tzinfo=UTC)  # never invented
        eventually(lambda: (centre.last_health() or {}).get("clock", {}).get("status") ==
                   "suspect", 5, "health saying the clock is suspect")
        h = centre.last_health()
        assert h is not None and "build date" in h["clock"]["reason"]
        assert parse_time(h["at"]) - clock() < timedelta(seconds=5)
