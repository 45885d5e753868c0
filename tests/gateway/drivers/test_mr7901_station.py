"""The simulated MR7901 station against the driver's replies: the session state machine on an
injected clock (register -> redirect -> login -> heartbeat -> data; resends, re-login,
re-register, refusals), the device's packets, and the TCP runner dialing a tiny server over
real loopback sockets."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.devices import device_class
from firmware_sim.devices.base import SimTag
from firmware_sim.devices.mr7901 import (
    Action,
    Close,
    Connect,
    MR7901Device,
    Phase,
    Send,
    StationSession,
)
from firmware_sim.station import fixed_tags, random_tags, run_station
from gateway.drivers.base import Rejected
from gateway.drivers.mr7901.frames import (
    DataReport,
    Heartbeat,
    HeartbeatReply,
    Login,
    LoginReply,
    Message,
    Register,
    decode_packet,
)
from gateway.drivers.mr7901.protocol import MR7901Driver
from pak.types import TagRead
from tests.support.wait import eventually

T0 = datetime(2026, 11, 28, 14, 0, 0)  # the station's clock (naive; the platform runs UTC)
PLATFORM = ("192.0.2.1", 4600)
LOAD = ("192.0.2.2", 4900)
S = timedelta(seconds=1)


class Platform:
    """Answers with the driver's replies, its clock in step with the station's."""

    def __init__(self, driver: MR7901Driver | None = None) -> None:
        self.driver = driver or MR7901Driver(advertise=LOAD)

    def answer(self, action: Action, now: datetime) -> bytes:
        assert isinstance(action, Send), action
        frame = decode_packet(action.data)
        return b"".join(self.driver.replies(frame, now.replace(tzinfo=UTC)))


def sent(actions: list[Action]) -> Message:
    (action,) = actions
    assert isinstance(action, Send), actions
    return action.message


def online_session(platform: Platform | None = None, **kw: float) -> tuple[StationSession,
                                                                            Platform]:
    platform = platform or Platform()
    s = StationSession(MR7901Device(device_id="ST-0001"), PLATFORM, **kw)  # type: ignore[arg-type]
    s.start(T0)
    reg = s.connected(T0)
    s.on_bytes(platform.answer(reg[0], T0), T0)
    login = s.connected(T0)
    hb = s.on_bytes(platform.answer(login[0], T0), T0)
    assert s.on_bytes(platform.answer(hb[0], T0), T0) == []
    assert s.phase is Phase.ONLINE
    return s, platform


# -- the happy path -------------------------------------------------------------------------------

def test_register_redirect_login_heartbeat_data() -> None:
    platform = Platform()
    s = StationSession(MR7901Device(device_id="ST-0001"), PLATFORM, heartbeat_s=30,
                       resend_s=10)
    assert s.start(T0) == [Connect(PLATFORM)]
    assert s.phase is Phase.CONNECTING

    reg = s.connected(T0)
    msg = sent(reg)
    assert isinstance(msg, Register) and msg.serial == 0 and msg.device_id == "ST-0001"
    assert s.phase is Phase.REGISTERING

    # 0x8008 names the load server: close, and dial it.
    assert s.on_bytes(platform.answer(reg[0], T0), T0) == [Close("redirect"), Connect(LOAD)]
    assert s.login_address == LOAD

    login = s.connected(T0)
    assert isinstance(sent(login), Login) and sent(login).serial == 1
    assert s.phase is Phase.LOGGING_IN

    hb = s.on_bytes(platform.answer(login[0], T0), T0)  # logged in: first heartbeat at once
    beat = sent(hb)
    assert isinstance(beat, Heartbeat) and beat.serial == 2 and beat.time == T0
    assert s.on_bytes(platform.answer(hb[0], T0), T0) == []
    assert s.phase is Phase.ONLINE

    t = T0 + 3 * S
    data = s.queue_tags([SimTag("A1B2C3D4", antenna=2, rssi_dbm=-55, key=True)], t)
    report = sent(data)
    assert isinstance(report, DataReport) and report.serial == 3
    (read,) = platform.driver.reads(decode_packet(report.encode()))
    assert (read.tag_id, read.antenna, read.rssi_dbm, read.key, read.in_range,
            read.reader_time) == ("A1B2C3D4", 2, -55.0, True, True, t)
    assert s.on_bytes(platform.answer(data[0], t), t) == []
    assert s.stats["tags_acked"] == 1 and s.serial == 4

    # Heartbeats every 30 s from the last one.
    assert s.next_deadline() == T0 + 30 * S
    assert s.tick(T0 + 29 * S) == []
    hb2 = s.tick(T0 + 30 * S)
    assert isinstance(sent(hb2), Heartbeat) and sent(hb2).serial == 4


def test_queued_tags_wait_for_login_and_go_in_batches() -> None:
    platform = Platform()
    s = StationSession(MR7901Device(), PLATFORM, tags_per_report=2)
    s.start(T0)
    tags = [SimTag(f"0000000{i}") for i in range(5)]
    assert s.queue_tags(tags, T0) == []  # not online: buffered
    reg = s.connected(T0)
    s.on_bytes(platform.answer(reg[0], T0), T0)
    login = s.connected(T0)
    hb = s.on_bytes(platform.answer(login[0], T0), T0)
    # Queued tags go before the first heartbeat.
    got: list[str] = []
    action = hb
    while action:
        msg = sent(action)
        if isinstance(msg, DataReport):
            assert len(msg.records) <= 2
            got += [r.tag_id for r in platform.driver.reads(msg)]
        action = s.on_bytes(platform.answer(action[0], T0), T0)
    assert isinstance(sent(hb), DataReport)
    assert got == [t.tag_id for t in tags]


# -- unanswered messages --------------------------------------------------------------------------

def test_unanswered_heartbeat_is_resent_5_times_then_login_again() -> None:
    s, platform = online_session(heartbeat_s=30, resend_s=10)
    t = T0 + 30 * S
    first = s.tick(t)
    assert isinstance(sent(first), Heartbeat)
    sends = [first]
    for _ in range(4):
        assert s.tick(t + 9 * S) == []
        t += 10 * S
        sends.append(s.tick(t))
    # Five identical sends: same serial, same bytes.
    assert len({a[0].data for a in sends}) == 1  # type: ignore[union-attr]
    t += 10 * S
    relogin = s.tick(t)
    assert isinstance(sent(relogin), Login) and s.phase is Phase.LOGGING_IN
    assert s.stats["relogins"] == 1 and s.stats["resends"] == 4
    hb = s.on_bytes(platform.answer(relogin[0], t), t)
    assert isinstance(sent(hb), Heartbeat)  # logged in again: a heartbeat at once
    assert s.phase is Phase.ONLINE


def test_unanswered_data_keeps_its_tags_through_the_relogin() -> None:
    s, platform = online_session(resend_s=10)
    t = T0 + S
    first = s.queue_tags([SimTag("CAFEF00D"), SimTag("0BADBEEF")], t)
    for _ in range(4):
        t += 10 * S
        assert sent(s.tick(t)) == sent(first)
    t += 10 * S
    relogin = s.tick(t)
    assert isinstance(sent(relogin), Login)
    again = s.on_bytes(platform.answer(relogin[0], t), t)
    report = sent(again)
    assert isinstance(report, DataReport)
    assert [r.tag_id for r in platform.driver.reads(report)] == ["CAFEF00D", "0BADBEEF"]
    assert report.serial == sent(first).serial + 1  # the login was the answered message between


def test_unanswered_login_is_sent_10_times_then_register_again() -> None:
    s = StationSession(MR7901Device(), PLATFORM, resend_s=5)
    platform = Platform()
    s.start(T0)
    reg = s.connected(T0)
    s.on_bytes(platform.answer(reg[0], T0), T0)
    t = T0
    logins = [s.connected(t)]
    for _ in range(9):
        t += 5 * S
        logins.append(s.tick(t))
    assert all(isinstance(sent(a), Login) for a in logins)
    assert len({sent(a).serial for a in logins}) == 1
    t += 5 * S
    assert s.tick(t) == [Connect(PLATFORM)]  # back to the registration server
    assert s.stats["reregisters"] == 1 and s.stats["login_sent"] == 10
    assert isinstance(sent(s.connected(t)), Register)


def test_register_is_resent_without_end_even_when_refused() -> None:
    refusing = Platform(MR7901Driver())  # no advertise: registration refused (0xFF)
    s = StationSession(MR7901Device(), PLATFORM, resend_s=5)
    s.start(T0)
    action = s.connected(T0)
    t = T0
    for _ in range(25):
        assert s.on_bytes(refusing.answer(action[0], t), t) == []
        t += 5 * S
        action = s.tick(t)
        assert isinstance(sent(action), Register)
    assert s.stats["register_refused"] == 25 and s.phase is Phase.REGISTERING


def test_refused_login_waits_3_minutes_then_registers() -> None:
    class Refuser(Platform):
        def answer(self, action: Action, now: datetime) -> bytes:
            assert isinstance(action, Send)
            frame = decode_packet(action.data)
            if isinstance(frame, Login):
                return b"".join(self.driver.refusal(frame, now.replace(tzinfo=UTC)))
            return super().answer(action, now)

    platform = Refuser()
    s = StationSession(MR7901Device(), PLATFORM)
    s.start(T0)
    reg = s.connected(T0)
    s.on_bytes(platform.answer(reg[0], T0), T0)
    login = s.connected(T0)
    assert s.on_bytes(platform.answer(login[0], T0), T0) == [Close("wait")]
    assert s.phase is Phase.WAITING and s.next_deadline() == T0 + 180 * S
    assert s.tick(T0 + 179 * S) == []
    assert s.tick(T0 + 180 * S) == [Connect(PLATFORM)]


def test_lost_connection_requeues_tags_and_starts_over() -> None:
    s, _ = online_session(reconnect_s=2)
    t = T0 + S
    first = s.queue_tags([SimTag("12345678")], t)
    assert isinstance(sent(first), DataReport)
    assert s.connection_lost(t) == [Close("wait")]
    assert s.in_flight is None and len(s.queue) == 1
    assert s.tick(t + S) == []
    assert s.tick(t + 2 * S) == [Connect(PLATFORM)]
    assert s.connect_failed(t + 2 * S) == [Close("wait")]
    assert s.tick(t + 4 * S) == [Connect(PLATFORM)]
    assert isinstance(sent(s.connected(t + 4 * S)), Register)


def test_stray_reply_is_ignored() -> None:
    s, platform = online_session()
    t = T0 + 30 * S
    hb = s.tick(t)
    wrong = HeartbeatReply(device_id="ST-0001", serial=sent(hb).serial + 7, time=t).encode()
    assert s.on_bytes(wrong, t) == [] and s.in_flight == sent(hb)
    assert s.stats["stray_replies"] == 1
    assert s.on_bytes(b"\x00\x55\xaa\x00", t) == []  # line noise
    assert s.on_bytes(platform.answer(hb[0], t), t) == [] and s.in_flight is None


def test_set_time_operation_corrects_the_station_clock() -> None:
    # The platform's clock is an hour ahead of the station's and it syncs clocks.
    class Ahead(Platform):
        def answer(self, action: Action, now: datetime) -> bytes:
            return super().answer(action, now + timedelta(hours=1))

    s, platform = online_session(Ahead(MR7901Driver(advertise=LOAD, clock_sync_after=5)),
                                 heartbeat_s=30)
    assert s.clock_offset == timedelta(hours=1) and s.stats["clock_set"] == 1
    hb = s.tick(T0 + 30 * S)
    assert sent(hb).time == T0 + timedelta(hours=1, seconds=30)  # type: ignore[attr-defined]
    reply = decode_packet(platform.answer(hb[0], T0 + 30 * S))
    assert isinstance(reply, HeartbeatReply) and reply.operation == 0x00  # in step now


# -- the device -----------------------------------------------------------------------------------

def test_device_read_frames_decode_to_the_tags() -> None:
    dev = device_class("mr7901")(rng=random.Random(1))
    assert isinstance(dev, MR7901Device)
    now = datetime(2026, 11, 28, 6, 15, 2, 500000, tzinfo=UTC)
    tags = [SimTag("00C0FFEE", antenna=4, rssi_dbm=-70, tag_type=0x31, low_battery=True),
            SimTag(dev.random_tag_id(), antenna=1, in_range=False)]
    data = dev.read_frames(tags, now)
    drv = MR7901Driver()
    dec = drv.decoder()
    reads: list[TagRead] = []
    for item in dec.feed(data):
        assert not isinstance(item, Rejected)
        reads += drv.reads(item)
    assert [r.tag_id for r in reads] == [t.tag_id for t in tags]
    assert (reads[0].antenna, reads[0].rssi_dbm, reads[0].tag_type, reads[0].low_battery) == \
        (4, -70.0, 0x31, True)
    assert reads[1].in_range is False and reads[1].tag_type == 0x30
    assert reads[0].reader_time == datetime(2026, 11, 28, 6, 15, 2)
    assert dev.read_frames([], now) == b""


def test_device_splits_many_tags_and_counts_serials() -> None:
    dev = MR7901Device()
    data = dev.read_frames([SimTag(f"{i:08X}") for i in range(45)], T0)
    items = MR7901Driver().decoder().feed(data)
    assert [len(m.records) for m in items] == [20, 20, 5]  # type: ignore[union-attr]
    assert [m.serial for m in items] == [0, 1, 2]  # type: ignore[union-attr]


def test_device_parses_host_replies() -> None:
    dev = MR7901Device()
    reply = LoginReply(device_id=dev.device_id, serial=3, time=T0).encode()
    assert dev.on_host_bytes(b"\xff" + reply[:10], T0) == b""
    assert dev.on_host_bytes(reply[10:], T0) == b""
    assert dev.take_inbox() == [LoginReply(device_id=dev.device_id, serial=3, time=T0)]
    assert dev.rejected == {"garbage": 1}
    tag_id = dev.random_tag_id()
    assert len(tag_id) == 8 and int(tag_id, 16) >= 0 and tag_id == tag_id.upper()


# -- the TCP runner on loopback -------------------------------------------------------------------

class TinyPlatform:
    """Two listeners on loopback: the registration server (``platform``) and the load server
    it advertises (``load``). Each connection is answered with the driver's replies()."""

    def __init__(self) -> None:
        self.servers = {name: socket.create_server(("127.0.0.1", 0)) for name in
                        ("platform", "load")}
        self.load_port = self.servers["load"].getsockname()[1]
        self.platform_port = self.servers["platform"].getsockname()[1]
        self.log: list[tuple[str, str]] = []  # (listener, frame kind)
        self.reads: list[TagRead] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._accept, args=(n, s), daemon=True)
                        for n, s in self.servers.items()]
        for th in self.threads:
            th.start()

    def _accept(self, name: str, server: socket.socket) -> None:
        server.settimeout(0.05)
        while not self.done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            th = threading.Thread(target=self._serve, args=(name, conn), daemon=True)
            th.start()
            self.threads.append(th)

    def _serve(self, name: str, conn: socket.socket) -> None:
        drv = MR7901Driver(advertise=("127.0.0.1", self.load_port))
        dec = drv.decoder()
        conn.settimeout(0.05)
        with conn:
            while not self.done.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                for item in dec.feed(data):
                    if isinstance(item, Rejected):
                        continue
                    with self.lock:
                        self.log.append((name, item.kind))
                        self.reads += drv.reads(item)
                    for reply in drv.replies(item, datetime.now(UTC)):
                        conn.sendall(reply)

    def holds(self, cond: Callable[[], bool]) -> bool:
        """`cond` evaluated while the connection threads cannot change the log or the reads."""
        with self.lock:
            return cond()

    def close(self) -> None:
        self.done.set()
        for th in self.threads:
            th.join(timeout=2)
        for s in self.servers.values():
            s.close()


class GarbageAndChunks:
    """A line that puts stray bytes before every packet and cuts it into 3-byte writes."""

    def damage(self, frame: bytes) -> tuple[bytes, object]:
        return frame, None

    def garbage(self) -> bytes:
        return b"\x55\xaa\xa0\x02"

    def split(self, data: bytes) -> list[tuple[float, bytes]]:
        return [(0.0, data[i:i + 3]) for i in range(0, len(data), 3)]


@pytest.fixture
def tiny_platform() -> Iterator[TinyPlatform]:
    p = TinyPlatform()
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("faults", [None, GarbageAndChunks()], ids=["clean", "garbage"])
def test_station_dials_follows_the_redirect_and_reports(tiny_platform: TinyPlatform,
                                                        faults: GarbageAndChunks | None) -> None:
    p = tiny_platform
    stop = threading.Event()
    result: dict[str, object] = {}

    def station() -> None:
        result["stats"] = run_station(
            ("127.0.0.1", p.platform_port), "ST-LOOP-01", fixed_tags(["A1B2C3D4", "0000beef"]),
            stop, rate=20, heartbeat_s=0.2, resend_s=1.0, reconnect_s=0.1, faults=faults)

    th = threading.Thread(target=station)
    th.start()
    try:
        eventually(lambda: p.holds(lambda: {r.tag_id for r in p.reads} >= {"A1B2C3D4", "0000BEEF"}
                                   and p.log.count(("load", "heartbeat")) >= 2),
                   10, "both tags and two heartbeats at the platform", detail=lambda: str(p.log))
    finally:
        stop.set()
        th.join(timeout=5)
    assert not th.is_alive()
    # Registered at the platform address, then everything else on the advertised one.
    assert p.log[0] == ("platform", "register")
    assert {k for n, k in p.log if n == "platform"} == {"register"}
    assert {k for n, k in p.log if n == "load"} >= {"login", "heartbeat", "data_report"}
    stats = result["stats"]
    assert isinstance(stats, dict)
    assert stats["connections"] == 2 and stats["tags_acked"] >= 2
    assert stats.get("resends", 0) == 0  # every message was answered in time
    assert all(r.reader_time is not None for r in p.reads)


def test_station_with_nobody_listening_keeps_trying_and_stops() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    stats = run_station(("127.0.0.1", port), "ST-NOBODY", random_tags(5, seed=1), stop,
                        rate=10, reconnect_s=0.1)
    timer.join()
    assert stats["connect_failures"] >= 2 and stats["connections"] == 0
