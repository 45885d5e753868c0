"""The serial link reading on real I/O: reads with their reader id and arrival time, echoes
ignored, the watchdog (rearm a quiet reader, reopen a silent one), a lost final frame, and
every intact read of a faulty line from ``pak sim reader``. The reader is played by
:mod:`tests.gateway.link.played_reader`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from gateway.drivers import make_driver
from gateway.link.serial_link import SerialLink
from tests.gateway.link.played_reader import (
    GET_INFO,
    LOGGER,
    PlayedReader,
    Pty,
    chafon_link,
    crc_mcrf4xx,
    warnings,
    with_crc,
)
from tests.support.links import Reads, running
from tests.support.wait import eventually


def test_hand_built_frames_match_the_readme() -> None:
    assert crc_mcrf4xx(b"123456789") == 0x6F91
    assert with_crc(bytes.fromhex("04FF21")) == GET_INFO
    assert with_crc(bytes.fromhex("04FF01")) == bytes.fromhex("04FF011BB4")  # UHFReader18 inv.


def test_reads_arrive_with_reader_id_and_arrival_time(tmp_path: Path) -> None:
    pty = Pty(tmp_path / "by-id-reader")
    reader = PlayedReader(pty.master)
    sink = Reads()
    link = chafon_link(str(pty.link), sink)
    assert link.status()["state"] == "down"
    try:
        before = datetime.now(UTC)
        with running(link):
            eventually(lambda: len(sink.items) >= 5, 5, "five reads")
            status = link.status()
        after = datetime.now(UTC)
    finally:
        reader.stop()
        pty.vanish()
    read, reader_id, at = sink.items[0]
    assert read.tag_id == "E200301666130121155074EF"
    assert read.antenna == 1 and read.rssi_raw == 0x60
    assert reader_id == "rd-17"
    assert at.tzinfo is not None and before <= at <= after
    assert status["state"] == "connected" and status["url"] == str(pty.link)
    assert status["since"].tzinfo is not None
    assert status["device"] == pty.path  # the by-id link resolved to the pty behind it
    assert status["reads"] >= 5 and status["frames_ok"] >= status["reads"]
    assert status["reconnects"] == 0 and status["frames_bad"] == {}
    # Each summary (the round's final reply) made the link send the next inventory.
    assert reader.inventories >= 5
    assert link.status()["state"] == "down"


def test_echo_of_our_commands_is_ignored_and_does_not_keep_a_dead_reader_alive(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    # First a working reader behind an echoing RS-485 adapter ...
    pty = Pty(tmp_path / "rs485")
    reader = PlayedReader(pty.master, echo=True)
    sink = Reads()
    link = chafon_link(str(pty.link), sink, watchdog_s=0.8, ping_every_s=0.2)
    try:
        with running(link):
            eventually(lambda: len(sink.items) >= 10, 5, "ten reads")
            eventually(lambda: link.status()["echoes"] >= 10, 5, "ten echoes")
            s = link.status()
            assert s["reads"] == len(sink.items)  # the echoed inventory made no read
            assert s["reconnects"] == 0
            # ... then the reader dies, the adapter keeps echoing: the echo of our pings
            # must not count as an answer.
            reader.streaming = False
            reader.answer_info = False
            eventually(lambda: link.status()["reconnects"] >= 1, 4, "a reconnect")
    finally:
        reader.stop()
        pty.vanish()
    assert reader.infos >= 1  # it was pinged before being declared dead
    assert warnings(caplog, "link_lost") == 1


def test_silence_past_the_watchdog_reopens_and_logs_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    pty = Pty(tmp_path / "mute")
    reader = PlayedReader(pty.master, streaming=False, answer_info=False)
    sink = Reads()
    link = chafon_link(str(pty.link), sink, watchdog_s=0.4, ping_every_s=0.15,
                       backoff_initial_s=0.02, backoff_max_s=0.05)
    try:
        with running(link):
            eventually(lambda: link.status()["reconnects"] >= 3, 4, "three reconnects")
            s = link.status()
            # Every reopen sends the start commands again (the reader sees them a moment later).
            eventually(lambda: reader.inventories >= 4 and reader.infos >= 3, 5,
                       "inventories and info probes")
    finally:
        reader.stop()
        pty.vanish()
    assert s["last_error"].startswith("no frame from the reader")
    assert s["pings"] >= 3
    # Three dead connections in a row: one warning, the rest at debug.
    assert warnings(caplog, "link_lost") == 1
    assert sum(1 for r in caplog.records if r.getMessage() == "link_lost") >= 3


def test_a_quiet_reader_that_answers_the_ping_is_rearmed_not_dropped(tmp_path: Path) -> None:
    pty = Pty(tmp_path / "quiet")
    reader = PlayedReader(pty.master, streaming=False, answer_info=True)
    sink = Reads()
    link = chafon_link(str(pty.link), sink, watchdog_s=0.5, ping_every_s=0.15)
    try:
        with running(link):
            time.sleep(1.5)  # deliberately three watchdog periods: rearms, never a reconnect
            s = link.status()
            assert s["reconnects"] == 0 and s["state"] == "connected"
            assert s["rearms"] >= 3
            # The reader comes back to life: the inventory the link re-sent brings reads.
            reader.streaming = True
            reader.inventories = 0
            eventually(lambda: len(sink.items) >= 3, 5, "three reads")
    finally:
        reader.stop()
        pty.vanish()
    assert reader.infos >= 3


def test_a_lost_final_frame_costs_half_a_second_not_a_ping_interval(tmp_path: Path) -> None:
    """A command-response reader waits for the next inventory after each round: when a round's
    reply is lost, the link pings early (after ten usual gaps, at least 0.5 s) and re-arms."""
    pty = Pty(tmp_path / "lossy")
    reader = PlayedReader(pty.master, round_s=0.01)
    sink = Reads()
    link = chafon_link(str(pty.link), sink, watchdog_s=6.0, ping_every_s=3.0)
    try:
        with running(link):
            eventually(lambda: len(sink.items) >= 30, 5, "thirty reads")
            n = len(sink.items)
            reader.lose_next = 1
            t0 = time.monotonic()
            eventually(lambda: len(sink.items) > n + 1, 3, "reads after the stall")
            stalled = time.monotonic() - t0
            s = link.status()
    finally:
        reader.stop()
        pty.vanish()
    assert 0.4 <= stalled < 1.5
    assert s["pings"] == 1 and s["rearms"] == 1 and s["reconnects"] == 0


@pytest.mark.parametrize("driver", ["chafon", "r2000"])
def test_every_intact_read_of_a_faulty_line_arrives(tmp_path: Path, driver: str) -> None:
    """``pak sim reader`` with corrupted, garbled, shortened, chunked and echoed frames: the
    link delivers exactly the reads whose frames arrived intact (the simulator's ground
    truth), however often a damaged final frame (Chafon's last reply, the R2000's round
    summary) stalls the loop of inventories."""
    link_path = tmp_path / "faulty"
    truth = tmp_path / "sent.jsonl"
    sim = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "sim", "reader", "--driver", driver,
         "--link", str(link_path), "--random", "20", "--rate", "200", "--count", "80",
         "--corrupt", "0.05", "--garbage", "0.1", "--drop", "0.03", "--chunk", "--echo",
         "--seed", "11", "--log-sent", str(truth), "--log-level", "warning"],
        stdout=subprocess.PIPE, text=True)
    sink = Reads()
    try:
        assert sim.stdout is not None and sim.stdout.readline().startswith("/dev/")
        link = SerialLink(str(link_path), lambda: make_driver(driver), baud=115200,
                          reader_id="rd-17", sink=sink, watchdog_s=2.0, ping_every_s=0.3,
                          backoff_initial_s=0.05, backoff_max_s=0.2)
        with running(link):
            sim.wait(20)  # --count reached: the simulator exits
            sent = [orjson.loads(line) for line in truth.read_bytes().splitlines()]
            intact = Counter(r["tag_id"] for r in sent if r["event"] == "read"
                             and r["delivered"] and not r["corrupted"] and not r["dropped"])
            eventually(lambda: link.status()["reads"] >= sum(intact.values()), 5,
                       "the link decoding what the simulator wrote last")
        s = link.status()
    finally:
        if sim.poll() is None:
            sim.kill()
        sim.wait(5)
    damaged = sum(1 for r in sent if r["event"] == "read" and (r["corrupted"] or r["dropped"]))
    assert damaged > 0  # the seed does damage some frames
    assert Counter(sink.tags()) == intact
    assert s["echoes"] > 0 and s["garbage_bytes"] > 0 and s["reads"] == sum(intact.values())
