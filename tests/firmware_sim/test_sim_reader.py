"""``pak sim reader`` over real pseudo-terminals: the test plays the gateway.

Every test runs the simulator as a subprocess and reads its pty as the gateway would; the
simulator's ground truth (``--log-sent``) says what it sent, and the test's own decoding must
agree with it read for read.
"""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.devices.base import SimTag
from firmware_sim.faults import FaultConfig, Faults
from firmware_sim.pty_reader import parse_tag
from firmware_sim.tag_schedule import TagSchedule
from gateway.drivers import Rejected, make_driver
from gateway.drivers.mr7901.protocol import MR7901Driver
from pak.errors import ConfigError
from pak.types import TagRead
from tests.support.simreader import (
    ground_truth,
    open_port,
    play_gateway,
    read_line,
    sim_reader,
    stop,
)

# Drivers whose device runs on a pty. An MR7901 station dials TCP (its test is below); on a pty
# it only writes its data reports, which is how captures of it are made.
PTY_DRIVERS = ["r2000", "chafon", "em4100", "mr7901"]

# Tags in each driver's form, written out (not drawn from our own generators).
TAGS = {
    "r2000": ["E200301666130121155074EF", "300833B2DDD9014000000001:2"],
    "chafon": ["E200301666130121155074EF", "300833B2DDD9014000000001:2"],
    "em4100": ["62E3086CED", "0001020304"],
    "mr7901": ["782B6AA4", "EB144A33:3"],
}


def _tag_args(driver: str) -> list[str]:
    return [a for t in TAGS[driver] for a in ("--tag", t)]


# -- pure parts: tag specs, schedule, faults -------------------------------------------------


def test_parse_tag() -> None:
    assert parse_tag("e2003016:3") == SimTag("E2003016", antenna=3)
    assert parse_tag("62E3086CED") == SimTag("62E3086CED", antenna=1)
    for bad in ("", "XYZ", "E200:0", "E200:a"):
        with pytest.raises(ConfigError):
            parse_tag(bad)


def test_schedule_without_dwell_keeps_every_tag() -> None:
    a, b = SimTag("AA"), SimTag("BB")
    s = TagSchedule([a, b], start=10.0)
    assert [(e.kind, e.tag) for e in s.update(10.0)] == [("enter", a), ("enter", b)]
    assert s.next_change() is None
    assert [s.next_tags()[0] for _ in range(4)] == [a, b, a, b]
    assert s.update(1e6) == []


def test_schedule_dwell_replaces_tags_and_leaves_gaps() -> None:
    a, b, c = SimTag("AA"), SimTag("BB"), SimTag("CC")
    s = TagSchedule([a, b, c], dwell=2.0, visible=2, start=0.0)
    assert [(e.kind, e.tag.tag_id) for e in s.update(0.0)] == [("enter", "AA"), ("enter", "BB")]
    # Departures are staggered: slot 0 after 1 s, slot 1 after 2 s, then every 2 s each.
    assert s.next_change() == 1.0
    ev = s.update(1.0)
    assert [(e.kind, e.tag.tag_id, e.at) for e in ev] == [("leave", "AA", 1.0),
                                                            ("enter", "CC", 1.0)]
    ev = s.update(2.5)
    assert [(e.kind, e.tag.tag_id) for e in ev] == [("leave", "BB"), ("enter", "AA")]
    assert sorted(t.tag_id for t in s.in_range) == ["AA", "CC"]


def test_schedule_lone_tag_comes_and_goes() -> None:
    a = SimTag("AA")
    s = TagSchedule([a], dwell=3.0, start=0.0)
    s.update(0.0)
    assert s.next_tags() == [a]
    assert [e.kind for e in s.update(3.0)] == ["leave"]
    assert s.next_tags() == []  # three seconds of silence: the sighting can close
    assert [e.kind for e in s.update(6.0)] == ["enter"]
    assert s.next_tags(5) == [a]


def test_faults_with_certainty() -> None:
    frame = bytes.fromhex("0236324533303836434544303803")
    f = Faults(FaultConfig(corrupt=1.0), random.Random(1))
    out, dmg = f.damage(frame)
    assert dmg.corrupted and not dmg.dropped and len(out) == len(frame)
    assert sum(x != y for x, y in zip(out, frame, strict=True)) == 1
    out, dmg = Faults(FaultConfig(drop=1.0), random.Random(1)).damage(frame)
    assert dmg.dropped and len(out) == len(frame) - 1
    out, dmg = Faults(FaultConfig(), random.Random(1)).damage(frame)
    assert dmg.intact and out == frame
    assert Faults(FaultConfig(garbage=0.0), random.Random(1)).garbage() == b""
    junk = Faults(FaultConfig(garbage=1.0, garbage_max=5), random.Random(1)).garbage()
    assert 1 <= len(junk) <= 5
    with pytest.raises(ValueError):
        FaultConfig(corrupt=1.5)


@given(st.binary(max_size=300), st.integers(0, 2**32))
def test_chunking_keeps_every_byte_in_order(data: bytes, seed: int) -> None:
    pieces = Faults(FaultConfig(chunk=True, chunk_max=7), random.Random(seed)).split(data)
    assert b"".join(p for _, p in pieces) == data
    assert all(len(p) <= 7 for _, p in pieces)
    assert all(0 <= pause <= 0.001 for pause, _ in pieces)


# -- over a real pty ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver", PTY_DRIVERS)
def test_round_trip_every_tag_arrives(driver: str, tmp_path: Path) -> None:
    """The test plays the gateway (start commands, replies owed): every read the simulator
    logs arrives, intact and in order, and both given tags are among them."""
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", driver, *_tag_args(driver), "--count", "30", "--rate", "500",
            "--seed", "7", "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, driver, proc)
        assert proc.wait(timeout=5) == 0
    truth = ground_truth(sent)
    assert len(truth) == 30
    assert all(r["delivered"] and not r["corrupted"] for r in truth)
    assert [(r.tag_id, r.raw.hex().upper()) for r in run.reads] == [
        (t["tag_id"], t["raw"]) for t in truth]
    want = {spec.split(":")[0] for spec in TAGS[driver]}
    assert {r.tag_id for r in run.reads} == want
    assert run.rejected == []
    if driver in ("r2000", "chafon"):  # readers that only read when asked
        assert run.commands > 1


def test_given_antenna_reaches_the_read(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    with sim_reader(["--driver", "chafon", "--tag", "E20030166613012115507401:3", "--count", "3",
                     "--rate", "200", "--log-sent", str(sent)]) as (proc, path):
        run = play_gateway(path, "chafon", proc)
    assert [(r.tag_id, r.antenna) for r in run.reads] == [("E20030166613012115507401", 3)] * 3


@pytest.mark.parametrize("driver", PTY_DRIVERS)
def test_faults_reject_damaged_frames_but_intact_ones_decode(driver: str,
                                                              tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", driver, "--random", "6", "--count", "150", "--rate", "2000",
            "--per-round", "2", "--seed", "3", "--corrupt", "0.15", "--drop", "0.1",
            "--garbage", "0.2", "--chunk", "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, driver, proc, timeout=15, watchdog=0.1)
        assert proc.wait(timeout=5) == 0
    truth = ground_truth(sent)
    intact = [t["raw"] for t in truth if not (t["corrupted"] or t["dropped"])]
    damaged = [t for t in truth if t["corrupted"] or t["dropped"]]
    assert damaged, "the seed should damage some frames"
    reasons = {r.reason for r in run.rejected}
    assert reasons - {"garbage"}, f"damage must show as rejections, got {reasons}"
    # Every intact frame decodes, in order; a damaged frame never yields a read.
    assert [r.raw.hex().upper() for r in run.reads] == intact


def test_capture_file_holds_exactly_what_the_host_got(tmp_path: Path) -> None:
    capture, sent = tmp_path / "cap.bin", tmp_path / "sent.jsonl"
    args = ["--driver", "em4100", *_tag_args("em4100"), "--count", "20", "--rate", "400",
            "--garbage", "0.3", "--seed", "5", "--capture", str(capture), "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, "em4100", proc)
    assert capture.read_bytes() == bytes(run.received)
    assert len(ground_truth(sent)) == 20


def test_echo_returns_the_hosts_bytes(tmp_path: Path) -> None:
    """An RS-485 adapter echoes what the host sends; without --echo nothing comes back (EM4100
    readers never answer)."""
    for echo, expect in ((True, b"\x04\xff\x21\x19\x95"), (False, b"")):
        args = ["--driver", "em4100", "--rate", "0", "--duration", "3"]
        with sim_reader(args + (["--echo"] if echo else [])) as (proc, path):
            fd = open_port(path)
            try:
                os.write(fd, b"\x04\xff\x21\x19\x95")
                got = _read_for(fd, 0.4, want=len(expect) or None)
            finally:
                os.close(fd)
            assert stop(proc) == 0
        assert got == expect


def test_chafon_echo_frames_are_recognised_as_echoes(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", "chafon", *_tag_args("chafon"), "--count", "10", "--rate", "300",
            "--echo", "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, "chafon", proc)
    driver = make_driver("chafon")
    cmd = driver.start_commands()[0]
    assert run.received.startswith(cmd)  # our own inventory came straight back
    assert len(run.reads) == 10 and run.rejected == []


def test_sigterm_stops_cleanly_and_removes_the_link(tmp_path: Path) -> None:
    link = tmp_path / "reader0"
    with sim_reader(["--driver", "em4100", "--link", str(link), "--rate", "5"]) as (proc, path):
        assert os.readlink(link) == path
        assert stop(proc, signal.SIGTERM) == 0
    assert not link.exists() and not link.is_symlink()


def test_disconnect_without_reappear_keeps_the_pty(tmp_path: Path) -> None:
    """A pulled cable: the line goes dead for the outage, then reads resume on the same pty."""
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", "em4100", "--tag", "62E3086CED", "--rate", "100", "--duration", "1.2",
            "--disconnect-every", "0.4", "--outage", "0.2", "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, "em4100", proc)
        assert proc.wait(timeout=5) == 0
    events = ground_truth(sent, "disconnect")
    connects = ground_truth(sent, "connect")
    assert len(events) >= 2 and {c["path"] for c in connects} == {path}
    delivered = [t for t in ground_truth(sent) if t["delivered"]]
    assert len(run.reads) == len(delivered) > 20
    # No read is sent during an outage.
    for d in events:
        back = min((c["t"] for c in connects if c["t"] > d["t"]), default="9")
        assert not any(d["t"] < t["t"] < back for t in delivered)


def test_reappear_makes_a_new_pty_behind_the_same_link(tmp_path: Path) -> None:
    link = tmp_path / "by-id" / "usb-sim-reader"
    link.parent.mkdir()
    args = ["--driver", "em4100", "--tag", "62E3086CED", "--rate", "50", "--link", str(link),
            "--disconnect-every", "0.6", "--outage", "0.2", "--reappear"]
    with sim_reader(args) as (proc, first):
        assert os.readlink(link) == first
        fd = open_port(first)  # the gateway holds the old port open
        try:
            assert b"62E3086CED" in _read_for(fd, 0.3)
            assert proc.stdout is not None
            second = read_line(proc.stdout, 3.0)
            assert second != first
            assert os.readlink(link) == second
            # The old port is dead: reads fail or hit end of file, as on an unplugged adapter.
            assert _is_hung_up(fd)
        finally:
            os.close(fd)
        fd = open_port(str(link))
        try:
            assert b"62E3086CED" in _read_for(fd, 0.3)
        finally:
            os.close(fd)
        assert stop(proc) == 0


def test_duration_ends_the_run(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    t0 = time.monotonic()
    args = ["--driver", "em4100", "--rate", "20", "--duration", "0.5", "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, "em4100", proc, timeout=5)
        assert proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 3
    # 20 reads/s for 0.5 s: the first at once, then every 50 ms.
    assert 8 <= len(run.reads) == len(ground_truth(sent)) <= 12


def test_mr7901_station_dials_the_gateway(tmp_path: Path) -> None:
    """``--connect``: the station registers, follows the 0x8008 redirect, logs in and reports
    its tags over TCP; the test is the gateway's station server (the driver's own replies)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    driver = MR7901Driver(advertise=("127.0.0.1", port))
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", "mr7901", "--connect", f"127.0.0.1:{port}", "--tag", "782B6AA4:2",
            "--tag", "EB144A33", "--count", "12", "--rate", "100", "--log-sent", str(sent)]
    reads: list[TagRead] = []
    commands: list[str] = []
    conns: dict[socket.socket, Any] = {}
    try:
        with sim_reader(args) as (proc, first):
            assert first == f"tcp://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                ready, _, _ = select.select([server, *conns], [], [], 0.05)
                for sock in ready:
                    if sock is server:
                        conn, _ = server.accept()
                        conns[conn] = driver.decoder()
                        continue
                    data = sock.recv(65536)
                    if not data:
                        conns.pop(sock).flush()
                        sock.close()
                        continue
                    for item in conns[sock].feed(data):
                        assert not isinstance(item, Rejected), item
                        commands.append(item.kind)
                        reads.extend(driver.reads(item))
                        for reply in driver.replies(item, datetime.now(UTC)):
                            sock.sendall(reply)
            assert proc.wait(timeout=5) == 0
    finally:
        for sock in conns:
            sock.close()
        server.close()
    heard = ground_truth(sent, "heard")
    assert len(heard) == 12
    assert [(r.tag_id, r.antenna) for r in reads] == [(h["tag_id"], h["antenna"]) for h in heard]
    assert {r.tag_id for r in reads} == {"782B6AA4", "EB144A33"}
    # The manual's order: register, then (on the advertised address) login, then data.
    assert commands.index("register") < commands.index("login") < commands.index("data_report")


def test_usage_errors() -> None:
    from firmware_sim.cli import main

    assert main(["reader", "--driver", "nope"]) == 2
    assert main(["nope"]) == 2
    with pytest.raises(ConfigError):
        main(["reader", "--driver", "r2000", "--connect", "127.0.0.1:4900"])
    with pytest.raises(ConfigError):
        main(["reader", "--driver", "em4100", "--tag", "XYZ"])


# -- helpers -----------------------------------------------------------------------------------


def _read_for(fd: int, seconds: float, want: int | None = None) -> bytes:
    out = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (want is None or len(out) < want):
        ready, _, _ = select.select([fd], [], [], 0.02)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return bytes(out)


def _is_hung_up(fd: int) -> bool:
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        select.select([fd], [], [], 0.05)
        try:
            if os.read(fd, 4096) == b"":
                return True
        except BlockingIOError:
            continue
        except OSError:
            return True
    return False

