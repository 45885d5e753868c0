"""The serial link losing and finding its port: a pty that vanishes and comes back behind
the same symlink, capped backoff, a ``socket://`` device server, USB re-enumeration under
``pak sim reader``, a failing sink, settings refused at start. The reader is played by
:mod:`tests.gateway.link.played_reader`.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers import make_driver
from gateway.link.backoff import Backoff
from gateway.link.serial_link import SerialLink
from pak.errors import ConfigError
from pak.types import TagRead
from tests.gateway.link.played_reader import (
    EPC_A,
    EPC_B,
    LOGGER,
    PlayedReader,
    Pty,
    chafon_link,
    warnings,
)
from tests.support.links import Reads, running
from tests.support.wait import eventually


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
