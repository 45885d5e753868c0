"""The station server on real loopback TCP, with stations played by the test from the MR7901
manual's own example packets (and packets built here by hand in the manual's layout), and by
the project's simulated station.

Packet (manual 5.1/5.2): ``55 AA | length(2) command(2) serial(4) version(2) security(2)
device id(16) | content | CRC16 (CCITT-FALSE over header + content, high byte first)``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from binascii import crc_hqx
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.drivers.mr7901.protocol import MR7901Driver
from gateway.link.station_server import StationServer
from pak.errors import ConfigError
from tests.support.links import Reads, running
from tests.support.wait import eventually

LOGGER = "gateway.link.station_server"
DEV = "861694034205896"

# The manual's examples, verbatim (6.1.1 register, 6.2.1 login, 6.3.1 eg2 heartbeat,
# 6.4.1 data report with two tag records).
REGISTER = bytes.fromhex(
    "55AA 0022 0008 00000000 0001 0000 383631363934303334323035383936 00"
    " 0101 78563412 A75C")
LOGIN = bytes.fromhex(
    "55AA 0020 0001 00000000 0001 0000 383631363934303334323035383936 00"
    " 0207 0269 C50C")
HEARTBEAT = bytes.fromhex(
    "55AA 0028 0003 00000003 0001 0000 383631363934303334323035383936 00"
    " 0A01 1001 0302 11 06 01 0F 2C 28 BDCE")
DATA = bytes.fromhex(
    "55AA 0046 0004 0000008D 0001 0000 383631363934303334323035383936 00"
    " 8B01 0011 01 20 782B6AA4 2F 0000 00 A9 11010E132609"
    " 8B01 0011 01 20 EB144A33 64 0000 00 B8 11010E132609 833F")

# The gateway's clock in these tests, and the station's zone UTC: replies carry 2017-01-14
# 17:22:50 as 11 01 0E 11 16 32 (the manual's register reply time).
NOW = datetime(2017, 1, 14, 17, 22, 50, 250000, tzinfo=UTC)
NOW_FIELD = bytes.fromhex("11010E111632")


def packet(cmd: int, serial: int, device_id: str, content: bytes, version: int = 1) -> bytes:
    body = struct.pack(">HHIHH16s", 28 + len(content), cmd, serial, version, 0,
                       device_id.encode()) + content
    return b"\x55\xaa" + body + crc_hqx(body, 0xFFFF).to_bytes(2, "big")


def tag_tlv(tag_id: bytes, *, tag_type: int = 0x30, channel: int = 0x81, rssi: int = 0xB0,
            check: int | None = None) -> bytes:
    """0x8B01, 17 bytes: channel, type, id(4), check, excitation(2), status, RSSI, time(6)."""
    if check is None:
        check = -sum(bytes((tag_type,)) + tag_id) & 0xFF
    value = (bytes((channel, tag_type)) + tag_id + bytes((check,)) + b"\x00\x00\x00"
             + bytes((rssi,)) + bytes.fromhex("1A0B1C080910"))
    return struct.pack(">HH", 0x8B01, len(value)) + value


def parse(pkt: bytes) -> tuple[int, int, str, bytes]:
    """(command, serial, device id, content) of one packet, CRC checked."""
    assert pkt[:2] == b"\x55\xaa"
    length, cmd, serial, _ver, _sec, dev = struct.unpack(">HHIHH16s", pkt[2:30])
    assert len(pkt) == length + 4
    assert crc_hqx(pkt[2:-2], 0xFFFF) == int.from_bytes(pkt[-2:], "big")
    return cmd, serial, dev.rstrip(b"\0").decode(), pkt[30:-2]


class Station:
    """A station played by the test over one TCP connection."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.buf = b""

    def ask(self, pkt: bytes) -> tuple[int, int, str, bytes]:
        self.sock.sendall(pkt)
        return self.receive()

    def receive(self) -> tuple[int, int, str, bytes]:
        while True:
            if len(self.buf) >= 4:
                total = int.from_bytes(self.buf[2:4], "big") + 4
                if len(self.buf) >= total:
                    pkt, self.buf = self.buf[:total], self.buf[total:]
                    return parse(pkt)
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data

    def closed_by_server(self, timeout: float = 3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def serving(sink: Reads, **kw: Any) -> Iterator[StationServer]:
    kw.setdefault("clock", lambda: NOW)
    server = StationServer(("127.0.0.1", 0), MR7901Driver, sink=sink, **kw)
    with running(server):
        yield server


def test_hand_built_packets_match_the_manual() -> None:
    assert packet(0x0008, 0, DEV, bytes.fromhex("010178563412")) == REGISTER
    assert packet(0x0001, 0, DEV, bytes.fromhex("02070269")) == LOGIN
    for example in (HEARTBEAT, DATA):
        cmd, serial, dev, content = parse(example)  # the manual's CRCs check out
        assert dev == DEV and packet(cmd, serial, DEV, content) == example
    # The manual's first tag record, rebuilt: same check byte 2F (0x20 + 78 2B 6A A4).
    assert tag_tlv(bytes.fromhex("782B6AA4"), tag_type=0x20, channel=0x01, rssi=0xA9)[:11] \
        == DATA[30:41]


def test_a_session_is_answered_as_the_manual_says_and_reads_carry_the_device_id() -> None:
    sink = Reads()
    with serving(sink, advertise=("218.17.157.214", 4900)) as server:
        # Registration ("load balancing server"): told where to log in.
        reg = Station(server.bound_port)
        cmd, serial, dev, content = reg.ask(REGISTER)
        assert (cmd, serial, dev) == (0x8008, 0, DEV)
        # result 00, time, IP (32-byte string), port low byte first: the manual's own reply
        # content, byte for byte, as our clock reads the manual's time.
        assert content == bytes.fromhex(
            "00 11010E111632 3231382E31372E3135372E323134" + "00" * 18 + "2413")
        reg.close()
        # Then a new connection to the "load server": login, heartbeat, data.
        st = Station(server.bound_port)
        assert st.ask(LOGIN) == (0x8001, 0, DEV, b"\x00" + NOW_FIELD)
        assert st.ask(HEARTBEAT) == (0x8003, 3, DEV, b"\x00" + NOW_FIELD)
        assert st.ask(DATA) == (0x8004, 0x8D, DEV, b"\x00" + NOW_FIELD)
        eventually(lambda: server.status()["stations"] == [DEV], 5, "the station logged in")
        s = server.status()
        st.close()
    assert [(r.tag_id, r.tag_type, r.antenna, r.rssi_dbm) for r, _, _ in sink.items] == [
        ("782B6AA4", 0x20, 1, -87.0), ("EB144A33", 0x20, 1, -72.0)]
    assert {rid for _, rid, _ in sink.items} == {DEV}
    assert all(at == NOW for _, _, at in sink.items)
    assert s["state"] == "listening" and s["url"] == f"tcp://127.0.0.1:{server.bound_port}"
    assert s["frames_ok"] == 4 and s["frames_bad"] == {} and s["reads"] == 2
    assert s["reconnects"] == 1  # the same station again, after its registration connection
    assert server.status()["state"] == "down"


def test_without_advertise_the_redirect_names_the_address_the_station_reached() -> None:
    with serving(Reads()) as server:
        st = Station(server.bound_port)
        cmd, _, _, content = st.ask(REGISTER)
        st.close()
    assert cmd == 0x8008 and content[0] == 0x00
    assert content[7:39].rstrip(b"\0") == b"127.0.0.1"
    assert int.from_bytes(content[39:41], "little") == server.bound_port


def test_an_unknown_station_is_refused_logged_once_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    sink = Reads()
    with serving(sink, allow={"ALLOWED-0001"}) as server:
        for _ in range(2):
            st = Station(server.bound_port)
            # The login is refused in the protocol (result FF), then the line is closed.
            cmd, _serial, dev, content = st.ask(LOGIN)
            assert (cmd, dev, content[0]) == (0x8001, DEV, 0xFF)
            assert st.closed_by_server()
            st.close()
        # A data report straight away gets no answer and delivers nothing.
        st = Station(server.bound_port)
        st.sock.sendall(DATA)
        assert st.closed_by_server()
        st.close()
        # The allowed station is served.
        ok = Station(server.bound_port)
        assert ok.ask(packet(0x0001, 5, "ALLOWED-0001", bytes.fromhex("02070269")))[0] == 0x8001
        s = server.status()
        ok.close()
    assert s["refused"] == 3 and s["stations"] == ["ALLOWED-0001"] and sink.items == []
    refusals = [r for r in caplog.records if r.getMessage() == "station_refused"]
    assert len(refusals) == 3
    assert sum(r.levelno >= logging.WARNING for r in refusals) == 1


def test_two_stations_at_once_each_read_under_its_own_id() -> None:
    sink = Reads()
    a_id, b_id = "STATION-EAST-01", "STATION-WEST-02"
    with serving(sink) as server:
        a, b = Station(server.bound_port), Station(server.bound_port)
        assert a.ask(packet(0x0001, 1, a_id, bytes.fromhex("03020000")))[0] == 0x8001
        assert b.ask(packet(0x0001, 1, b_id, bytes.fromhex("03020000")))[0] == 0x8001
        eventually(lambda: server.status()["stations"] == [a_id, b_id], 5, "both stations")
        # Interleaved, one partly sent while the other completes.
        pa = packet(0x0004, 2, a_id, tag_tlv(bytes.fromhex("A1A2A3A4")))
        pb = packet(0x0004, 2, b_id, tag_tlv(bytes.fromhex("B1B2B3B4"))
                    + tag_tlv(bytes.fromhex("B5B6B7B8"), channel=0x03))
        a.sock.sendall(pa[:20])
        assert b.ask(pb)[:3] == (0x8004, 2, b_id)
        assert a.ask(pa[20:])[:3] == (0x8004, 2, a_id)
        assert b.ask(packet(0x0003, 3, b_id, bytes.fromhex("0A0110010302") + NOW_FIELD))[0] \
            == 0x8003
        a.close()
        eventually(lambda: server.status()["stations"] == [b_id], 5, "only station b")
        s = server.status()
        b.close()
    assert sink.by_reader() == {a_id: ["A1A2A3A4"], b_id: ["B1B2B3B4", "B5B6B7B8"]}
    antennas = {r.tag_id: r.antenna for r, _, _ in sink.items}
    assert antennas["B5B6B7B8"] == 3
    assert s["reads"] == 3 and s["connections"] == 1 and s["accepted"] == 2


def test_a_configured_reader_id_names_every_read() -> None:
    sink = Reads()
    with serving(sink, reader_id="xing-12") as server:
        st = Station(server.bound_port)
        st.ask(DATA)
        st.close()
        eventually(lambda: len(sink.items) == 2, 5, "two reads")
    assert {rid for _, rid, _ in sink.items} == {"xing-12"}


def test_damaged_bytes_do_not_break_a_session() -> None:
    sink = Reads()
    with serving(sink) as server:
        st = Station(server.bound_port)
        bad_crc = bytearray(DATA)
        bad_crc[40] ^= 0x01  # inside the first record: the packet's CRC no longer matches
        bad_tag = packet(0x0004, 0x8E, DEV, tag_tlv(bytes.fromhex("C1C2C3C4"), check=0x00)
                         + tag_tlv(bytes.fromhex("D1D2D3D4")))
        # Garbage, a corrupted packet (no answer: the station resends it), the resent one.
        st.sock.sendall(b"\x13\x37\x00" + bytes(bad_crc))
        assert st.ask(DATA)[:2] == (0x8004, 0x8D)
        # An intact packet with one tag record whose check byte is wrong: answered (resending
        # cannot repair a radio read), the good record read, the bad one counted.
        assert st.ask(bad_tag)[:2] == (0x8004, 0x8E)
        s = server.status()
        st.close()
    assert [r.tag_id for r, _, _ in sink.items] == ["782B6AA4", "EB144A33", "D1D2D3D4"]
    assert s["frames_ok"] == 2
    assert s["frames_bad"].get("bad_tag_check") == 1
    assert sum(n for r, n in s["frames_bad"].items() if r != "bad_tag_check") >= 1
    assert s["garbage_bytes"] >= 3


def test_an_idle_connection_is_closed() -> None:
    with serving(Reads(), idle_timeout_s=0.3) as server:
        st = Station(server.bound_port)
        assert st.ask(LOGIN)[0] == 0x8001
        t0 = time.monotonic()
        assert st.closed_by_server(timeout=3)
        idle_for = time.monotonic() - t0
        eventually(lambda: server.status()["connections"] == 0, 5, "no connections")
        s = server.status()
        st.close()
    assert 0.25 <= idle_for < 1.5
    assert s["idle_closed"] == 1 and s["stations"] == []


def test_a_port_in_use_is_refused_at_start() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            StationServer(("127.0.0.1", port), MR7901Driver, sink=Reads())


def test_two_simulated_stations_register_follow_the_redirect_and_report() -> None:
    """The project's simulated MR7901 (firmware_sim/station.py): register, the 0x8008 redirect
    to a new connection, login, heartbeats and data reports, two stations at once."""
    from firmware_sim.station import fixed_tags, run_station

    sink = Reads()
    stop = threading.Event()
    ids = {"SIM-STATION-A": "0A0B0C0D", "SIM-STATION-B": "1A1B1C1D"}
    results: dict[str, Any] = {}
    with serving(sink, allow=set(ids), clock=lambda: datetime.now(UTC)) as server:

        def station(device_id: str, tag: str) -> None:
            results[device_id] = run_station(
                ("127.0.0.1", server.bound_port), device_id, fixed_tags([tag]), stop,
                rate=10.0, heartbeat_s=0.3, resend_s=0.5, reconnect_s=0.2, tags_per_report=5)

        threads = [threading.Thread(target=station, args=item) for item in ids.items()]
        for t in threads:
            t.start()
        try:
            eventually(lambda: all(len(v) >= 5 for v in sink.by_reader().values())
                       and len(sink.by_reader()) == 2, 5, "five reads from each station")
            eventually(lambda: server.status()["stations"] == sorted(ids), 5, "both stations")
            # Deliberately longer than heartbeat_s: each station sends a heartbeat meanwhile
            # (counted in its own stats, which are read once it stops).
            time.sleep(0.4)
            s = server.status()
        finally:
            stop.set()
            for t in threads:
                t.join(5)
    assert {rid: set(tags) for rid, tags in sink.by_reader().items()} == {
        dev: {tag} for dev, tag in ids.items()}
    for dev in ids:
        st = results[dev]
        assert st["register_sent"] >= 1 and st["login_sent"] >= 1 and st["heartbeat_sent"] >= 1
        assert st["tags_acked"] >= 5 and st["resends"] == 0
    assert s["refused"] == 0 and s["frames_bad"] == {} and s["reconnects"] >= 2
