"""The serial link on real I/O: pseudo-terminals played by the test (or by ``pak sim reader``),
and a ``socket://`` URL to a TCP server in the test.

The reader the test plays speaks the Chafon UHFReader288 protocol (README section 2); its
frames are built here by hand, with a CRC-16/MCRF4XX written here from the README's definition
and checked against the README's known answers, never with the driver's own encoder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import socket
import subprocess
import sys
import threading
import time
import tty
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers import make_driver
from gateway.link.backoff import Backoff
from gateway.link.serial_link import SerialLink
from pak.errors import ConfigError
from pak.types import TagRead
from tests.support.wait import eventually

LOGGER = "gateway.link.serial_link"


# -- Chafon frames, by hand -------------------------------------------------------------------

def crc_mcrf4xx(data: bytes) -> int:
    """README: preset 0xFFFF, reflected polynomial 0x8408, no final XOR."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc_mcrf4xx(body)
    return body + bytes((crc & 0xFF, crc >> 8))  # LSB first


# Host -> reader, broadcast address 0xFF.
GET_INFO = bytes.fromhex("04FF211995")  # README's "get reader info" command, verbatim
# UHFReader288 inventory: Len 6 = Data(2) + 4; Data = QValue 4, Session 0.
INVENTORY = with_crc(bytes.fromhex("06FF010400"))

EPC_A = bytes.fromhex("E200301666130121155074EF")
EPC_B = bytes.fromhex("E28011606000020000ABCDEF")


def inventory_reply(epc: bytes, antenna_mask: int = 0x01, rssi: int = 0x60) -> bytes:
    """UHFReader288 reply: Len | Adr | 01 | Status 01 (round done) | Ant | Num | EPCLen | EPC |
    RSSI | CRC; Len = len(Data) + 5 with Data = Ant..RSSI."""
    data = bytes((antenna_mask, 1, len(epc))) + epc + bytes((rssi,))
    return with_crc(bytes((len(data) + 5, 0x00, 0x01, 0x01)) + data)


# Reader information reply: version 3.1, type, tr_type, dmaxfre, dminfre, power, scan time.
INFO_REPLY = with_crc(bytes((8 + 5, 0x00, 0x21, 0x00, 3, 1, 0x0F, 0x02, 0x4E, 0x00, 30, 10)))


def test_hand_built_frames_match_the_readme() -> None:
    assert crc_mcrf4xx(b"123456789") == 0x6F91
    assert with_crc(bytes.fromhex("04FF21")) == GET_INFO
    assert with_crc(bytes.fromhex("04FF01")) == bytes.fromhex("04FF011BB4")  # UHFReader18 inv.


# -- a reader played by the test ---------------------------------------------------------------

class PlayedReader:
    """Plays a Chafon reader on a file descriptor (a pty master or a socket).

    ``streaming``: answer each inventory with a tag (after ``round_s``, like a scan time);
    ``answer_info``: answer "get reader info"; ``echo``: send every command back (RS-485).
    """

    def __init__(self, fd: int, epc: bytes = EPC_A, *, streaming: bool = True,
                 answer_info: bool = True, echo: bool = False, round_s: float = 0.02) -> None:
        self.fd = fd
        self.epc = epc
        self.streaming = streaming
        self.answer_info = answer_info
        self.echo = echo
        self.round_s = round_s
        self.inventories = 0
        self.infos = 0
        self.lose_next = 0  # inventories to leave unanswered (their reply lost on the line)
        self.sent_tags = 0
        self._stop = threading.Event()
        self._buf = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.fd, 4096)
            except OSError:
                # A pty master reads EIO while nobody holds the slave open (the link is
                # between two connections): wait for the next open.
                time.sleep(0.02)
                continue
            if not data:
                time.sleep(0.02)
                continue
            self._buf += data
            self._serve()

    def _serve(self) -> None:
        while True:
            hits = [(self._buf.find(cmd), cmd) for cmd in (INVENTORY, GET_INFO)]
            hits = [(i, cmd) for i, cmd in hits if i >= 0]
            if not hits:
                self._buf = self._buf[-8:]
                return
            i, cmd = min(hits)
            self._buf = self._buf[i + len(cmd):]
            if self.echo:
                self._send(cmd)
            if cmd == INVENTORY:
                self.inventories += 1
                if self.lose_next:
                    self.lose_next -= 1
                elif self.streaming:
                    time.sleep(self.round_s)
                    self._send(inventory_reply(self.epc))
                    self.sent_tags += 1
            else:
                self.infos += 1
                if self.answer_info:
                    self._send(INFO_REPLY)


class Pty:
    """A pseudo-terminal whose slave is reached through a symlink (as /dev/serial/by-id/)."""

    def __init__(self, link: Path) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.link = link
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(self.path)

    def vanish(self) -> None:
        """The USB adapter is pulled: the device node and its by-id link disappear."""
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        os.close(self.master)


class Reads:
    """A sink that records what the link delivers."""

    def __init__(self) -> None:
        self.items: list[tuple[TagRead, str, datetime]] = []
        self.lock = threading.Lock()

    def __call__(self, read: TagRead, reader_id: str, received_at: datetime) -> None:
        with self.lock:
            self.items.append((read, reader_id, received_at))

    def tags(self) -> list[str]:
        with self.lock:
            return [r.tag_id for r, _, _ in self.items]


@contextlib.contextmanager
def running(link: SerialLink) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(3)
        assert not thread.is_alive(), "SerialLink.run did not return after stop"



def chafon_link(url: str, sink: Reads, **kw: Any) -> SerialLink:
    opts: dict[str, Any] = dict(watchdog_s=1.0, ping_every_s=0.3, backoff_initial_s=0.05,
                                  backoff_max_s=0.2)
    opts.update(kw)
    return SerialLink(url, lambda: make_driver("chafon"), baud=57600, reader_id="rd-17",
                      sink=sink, **opts)


def warnings(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(1 for r in caplog.records
               if r.name == LOGGER and r.levelno >= logging.WARNING and r.getMessage() == name)


# -- tests -------------------------------------------------------------------------------------

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


def test_port_vanishes_and_the_link_follows_a_new_pty_behind_the_same_symlink(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    link_path = tmp_path / "usb-Reader_0001-if00-port0"
    first = Pty(link_path)
    reader = PlayedReader(first.master, EPC_A)
    sink = Reads()
    link = chafon_link(str(link_path), sink, watchdog_s=2.0, backoff_initial_s=0.02,
                       backoff_max_s=0.1)
    second: Pty | None = None
    reader2: PlayedReader | None = None
    try:
        with running(link):
            eventually(lambda: len(sink.items) >= 3, 5, "three reads")
            reader.stop()
            first.vanish()
            eventually(lambda: link.status()["open_failures"] >= 3, 5,
                       "three failed opens")  # absent for a while
            frames_before = link.status()["frames_ok"]
            second = Pty(link_path)  # a new device node (the kernel may reuse its number)
            reader2 = PlayedReader(second.master, EPC_B)
            eventually(lambda: "E28011606000020000ABCDEF" in sink.tags(), 5, "the new tag")
            s = link.status()
        final = link.status()  # after run() returned: nothing more is delivered
    finally:
        if reader2 is not None:
            reader2.stop()
        if second is not None:
            second.vanish()
    assert s["state"] == "connected" and s["reconnects"] == 1
    assert s["device"] == second.path
    # Counters add up over both connections (a new decoder per connection).
    assert final["frames_ok"] > frames_before >= 3
    assert final["reads"] == len(sink.items)
    tags = sink.tags()
    first_b = tags.index("E28011606000020000ABCDEF")
    assert set(tags[:first_b]) == {"E200301666130121155074EF"}
    # One warning per transition however many reopen attempts the absence took.
    assert warnings(caplog, "link_lost") == 1
    assert warnings(caplog, "link_open_failed") == 1
    restored = [r for r in caplog.records if r.getMessage() == "link_restored"]
    assert len(restored) == 1


def test_backoff_is_capped_and_a_missing_port_is_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    sink = Reads()
    link = chafon_link(str(tmp_path / "never-there"), sink, backoff_initial_s=0.01,
                       backoff_max_s=0.08)
    with running(link):
        time.sleep(1.2)  # deliberately: the attempts made in 1.2 s are what is counted
        s = link.status()
    assert s["state"] in ("backoff", "connecting")
    assert "No such file" in s["last_error"]
    # Uncapped doubling from 10 ms would make 6-7 attempts in 1.2 s; capped at 80 ms (jitter
    # keeps each delay in [40, 80] ms once at the cap) it makes about 15-30.
    assert 12 <= s["open_failures"] <= 35
    assert warnings(caplog, "link_open_failed") == 1
    assert s["reconnects"] == 0 and s["reads"] == 0


@given(st.floats(0.001, 5.0), st.floats(1.0, 100.0), st.integers(1, 80), st.integers(0, 2**32))
def test_backoff_delays_double_within_jitter_and_never_pass_the_cap(
        initial: float, factor: float, steps: int, seed: int) -> None:
    maximum = initial * factor
    b = Backoff(initial, maximum, random.Random(seed))
    for n in range(steps):
        base = min(maximum, initial * 2**n)
        d = b.next()
        assert base / 2 <= d <= base <= maximum
    b.reset()
    assert b.next() <= initial


def test_socket_url_reaches_a_device_server_and_reconnects(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.settimeout(5)
    sink = Reads()
    link = chafon_link(f"socket://127.0.0.1:{port}", sink)
    readers: list[tuple[socket.socket, PlayedReader]] = []
    try:
        with running(link):
            conn, _ = server.accept()
            readers.append((conn, PlayedReader(conn.fileno(), EPC_A)))
            eventually(lambda: len(sink.items) >= 3, 5, "three reads")
            # The device server drops the connection (its serial side rebooted).
            readers[0][1].stop()
            conn.close()
            conn2, _ = server.accept()
            readers.append((conn2, PlayedReader(conn2.fileno(), EPC_B)))
            eventually(lambda: "E28011606000020000ABCDEF" in sink.tags(), 5, "the new tag")
            s = link.status()
    finally:
        for c, r in readers:
            r.stop()
            c.close()
        server.close()
    assert s["reconnects"] == 1 and s["device"] is None
    # A FIN (end of file) or, with our inventory unread, a reset.
    assert any(e in s["last_error"] for e in ("end of file", "Connection reset"))


def test_a_failing_sink_does_not_take_the_link_down(tmp_path: Path) -> None:
    pty = Pty(tmp_path / "r")
    reader = PlayedReader(pty.master)
    calls: list[TagRead] = []

    def bad_sink(read: TagRead, reader_id: str, received_at: datetime) -> None:
        calls.append(read)
        raise RuntimeError("runtime bug")

    link = SerialLink(str(pty.link), lambda: make_driver("chafon"), baud=57600,
                      reader_id="r", sink=bad_sink, watchdog_s=1.0, ping_every_s=0.3)
    try:
        with running(link):
            eventually(lambda: len(calls) >= 5, 5, "five opens")
            s = link.status()
    finally:
        reader.stop()
        pty.vanish()
    assert s["errors"]["sink"] >= 5 and s["reconnects"] == 0


def test_settings_that_cannot_work_are_refused_at_start() -> None:
    def make(url: str = "/dev/ttyUSB9", **kw: Any) -> SerialLink:
        return SerialLink(url, lambda: make_driver("chafon"), baud=57600, reader_id="r",
                          sink=Reads(), **kw)

    with pytest.raises(ConfigError, match="nope://"):
        make("nope://somewhere")
    with pytest.raises(ConfigError, match="ping"):
        make(watchdog_s=1.0, ping_every_s=2.0)
    with pytest.raises(ConfigError, match="backoff"):
        make(backoff_initial_s=5.0, backoff_max_s=1.0)
    make("socket://127.0.0.1:1")  # parses without connecting


def test_follows_pak_sim_reader_across_usb_reenumerations(tmp_path: Path) -> None:
    """The project's simulated reader, as a separate process, re-appearing as a new pty."""
    link_path = tmp_path / "sim-reader"
    sim = subprocess.Popen(
        [sys.executable, "-m", "pak.cli", "sim", "reader", "--driver", "chafon",
         "--link", str(link_path), "--tag", "E200301666130121155074EF", "--rate", "40",
         "--disconnect-every", "0.8", "--outage", "0.3", "--reappear", "--echo",
         "--seed", "7", "--log-level", "warning"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None
        first = sim.stdout.readline().strip()
        assert first.startswith("/dev/")
        sink = Reads()
        link = chafon_link(str(link_path), sink, backoff_initial_s=0.02, backoff_max_s=0.1)
        with running(link):
            eventually(lambda: link.status()["reconnects"] >= 2 and len(sink.items) >= 20,
                       8, "two reconnects and twenty reads")
            n = len(sink.items)
            eventually(lambda: len(sink.items) > n, 5,
                       "reads after the re-appearances")
            s = link.status()
    finally:
        sim.terminate()
        sim.wait(5)
    assert set(sink.tags()) == {"E200301666130121155074EF"}
    assert s["echoes"] > 0 and s["frames_bad"] == {}


def test_a_port_without_a_descriptor_loop_url_echoes_everything_and_is_declared_dead() -> None:
    """pyserial's ``loop://`` (like ``rfc2217://``) has no descriptor to wait on: the link blocks
    in read() instead. The loop sends back every byte written: all echo, never an answer."""
    sink = Reads()
    link = chafon_link("loop://", sink, watchdog_s=0.4, ping_every_s=0.1,
                       backoff_initial_s=0.02, backoff_max_s=0.05)
    with running(link):
        eventually(lambda: link.status()["reconnects"] >= 1, 3, "a reconnect")
    s = link.status()
    assert s["echoes"] >= 3  # the inventory, then the pings, each decoded as our own command
    assert s["frames"] == {"command": s["echoes"]} and s["reads"] == 0
    assert s["last_error"].startswith("no frame from the reader")
