"""The R2000 driver (commands, replies owed, echoes, TagReads, JSON) and the simulated reader
talking to it through stream decoders, no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firmware_sim.devices import SimTag, device_class
from firmware_sim.devices.r2000 import R2000Device
from gateway.drivers import driver_class, make_driver
from gateway.drivers.base import Rejected, StreamDecoder
from gateway.drivers.r2000 import protocol
from gateway.drivers.r2000.frames import (
    AntennaMissing,
    Command,
    FastSwitchSummary,
    FirmwareReply,
    InventorySummary,
    R2000FrameError,
    StatusReply,
    TagFrame,
)
from gateway.drivers.r2000.protocol import (
    R2000Driver,
    fast_switch_inventory_command,
    get_firmware_command,
    real_time_inventory_command,
    set_output_power_command,
    set_work_antenna_command,
)
from pak.types import TagRead

NOW = datetime(2026, 11, 28, 6, 15, 2, tzinfo=UTC)
README_TAG = bytes.fromhex("A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF")
# The README frame on an 8-port reader: FreqAnt 0x06 (antenna id 2), RSSI 0xC5 (bit 7: +4,
# 0x45 = -61 dBm). Both bytes grew by 0x82 in all, so the Check shrank by 0x82: 0xBF -> 0x3D.
EIGHT_PORT_TAG = bytes.fromhex("A0 13 01 89 06 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF C5 3D")


def decode(driver: R2000Driver, data: bytes) -> list[Any]:
    dec = driver.decoder()
    items = dec.feed(data) + dec.flush()
    assert not [x for x in items if isinstance(x, Rejected)], items
    return items


def test_registered() -> None:
    assert driver_class("r2000") is R2000Driver
    assert device_class("r2000") is R2000Device
    d = make_driver("r2000")
    assert (d.name, d.model, d.default_baud, d.default_exit_after, d.transport) == (
        "r2000", "standard", 115200, 3.0, "serial")
    with pytest.raises(ValueError):
        R2000Driver("uhfreader18")


def test_readme_tag_frame_as_a_tag_read() -> None:
    d = R2000Driver()
    [frame] = decode(d, README_TAG)
    assert d.reads(frame) == [TagRead(
        driver="r2000", tag_id="E200301666130121155074EF", tag_kind="epc", raw=README_TAG,
        antenna=1, rssi_dbm=-61, rssi_raw=0x45, frequency_mhz=865.5, pc=0x3000)]
    assert d.replies(frame, NOW) == [] and not d.is_echo(frame)


def test_reads_through_the_tagread_constructor_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback for a changed TagRead type makes the very same reads.
    d = R2000Driver()
    [frame] = decode(d, README_TAG)
    fast = d.reads(frame)
    monkeypatch.setattr(protocol, "_FAST_TAGREAD", False)
    assert d.reads(frame) == fast and type(fast[0]) is TagRead


def test_eight_port_antenna_and_rssi() -> None:
    [read] = R2000Driver("8port").reads(decode(R2000Driver(), EIGHT_PORT_TAG)[0])
    assert (read.antenna, read.rssi_raw, read.rssi_dbm) == (7, 0x45, -61)
    # The standard model reads the byte whole: antenna 3, RSSI 197.
    [read] = R2000Driver().reads(decode(R2000Driver(), EIGHT_PORT_TAG)[0])
    assert (read.antenna, read.rssi_raw) == (3, 0xC5)


def test_tag_read_json() -> None:
    d = R2000Driver()
    [read] = d.reads(decode(d, README_TAG)[0])
    assert read.to_json() == {
        "driver": "r2000", "tag_id": "E200301666130121155074EF", "tag_kind": "epc",
        "antenna": 1, "rssi_dbm": -61, "rssi_raw": 69, "frequency_mhz": 865.5, "pc": "3000",
        "raw": README_TAG.hex().upper()}


def test_a_tag_frame_without_epc_makes_no_read() -> None:
    frame = TagFrame.build(1, 0x89, 0, 0x0000, b"", 0x45)
    assert R2000Driver().reads(frame) == []


def test_non_tag_frames_make_no_reads() -> None:
    d = R2000Driver()
    for frame in (FirmwareReply(1, 1, 9), InventorySummary(1, 0x89, 0, 1, 1),
                  StatusReply(1, 0x89, 0x22), Command(1, 0x89, b"\x01")):
        assert d.reads(frame) == []


def test_commands() -> None:
    # Laid out from the manual's templates (address 0xFF unless given), Check summed by hand.
    assert real_time_inventory_command() == bytes.fromhex("A0 04 FF 89 01 D3")
    assert real_time_inventory_command(0x01) == bytes.fromhex("A0 04 01 89 01 D1")
    assert get_firmware_command(0x01) == bytes.fromhex("A0 03 01 72 EA")
    assert set_work_antenna_command(1, 0x01) == bytes.fromhex("A0 04 01 74 00 E7")
    assert set_output_power_command(30, 0x01) == bytes.fromhex("A0 04 01 76 1E C7")
    # 0x8A over antennas 1 and 3, the two unused slots 0xFF, repeat 1: A0+08+01+8A+00+02+FF+FF+01
    # = 0x334 -> Check 0xCC.
    assert fast_switch_inventory_command([1, 3], 0x01) == bytes.fromhex(
        "A0 08 01 8A 00 02 FF FF 01 CC")
    for bad in (lambda: set_work_antenna_command(0), lambda: set_work_antenna_command(9),
                lambda: set_output_power_command(34), lambda: set_output_power_command([30, 30]),
                lambda: fast_switch_inventory_command([1, 2, 3, 4, 1])):
        with pytest.raises(R2000FrameError):
            bad()


def test_start_and_ping() -> None:
    d = R2000Driver()
    assert d.start_commands() == [bytes.fromhex("A0 04 FF 89 01 D3")]
    assert d.ping_command() == bytes.fromhex("A0 03 FF 72 EC")
    assert d.is_ping_reply(FirmwareReply(1, 1, 9))
    assert d.is_ping_reply(StatusReply(1, 0x72, 0x11))
    assert not d.is_ping_reply(StatusReply(1, 0x74, 0x10))
    configured = R2000Driver(address=0x01, antenna=2, output_power=26)
    assert configured.start_commands() == [
        bytes.fromhex("A0 04 01 76 1A CB"),  # 26 dBm: 0x135 -> 0xCB
        bytes.fromhex("A0 04 01 74 01 E6"),  # antenna 2 (id 1): 0x11A -> 0xE6
        bytes.fromhex("A0 04 01 89 01 D1"),
    ]
    fast = R2000Driver(address=0x01, fast_switch=[1, 3])
    assert fast.start_commands() == [bytes.fromhex("A0 08 01 8A 00 02 FF FF 01 CC")]


def test_the_next_round_after_each_summary() -> None:
    d = R2000Driver()
    inventory = [bytes.fromhex("A0 04 FF 89 01 D3")]
    assert d.replies(InventorySummary(1, 0x89, 0, 5), NOW) == inventory  # Len 0x08
    assert d.replies(InventorySummary(1, 0x89, 0, 5, 100), NOW) == inventory  # Len 0x0A
    assert d.replies(FastSwitchSummary(1, 5, 200), NOW) == inventory  # Len 0x0B
    # Not ours to answer: 0x8B rounds, tag frames, errors (the link's ping restarts reading).
    assert d.replies(InventorySummary(1, 0x8B, 0, 5, 100), NOW) == []
    assert d.replies(TagFrame(README_TAG), NOW) == []
    assert d.replies(StatusReply(1, 0x89, 0x22), NOW) == []
    assert d.replies(AntennaMissing(1, 2), NOW) == []
    fast = R2000Driver(fast_switch=[2])
    assert fast.replies(FastSwitchSummary(1, 5, 200), NOW) == [fast.inventory_command()]


@pytest.mark.parametrize("address", [0xFF, 0x01])
def test_rs485_echo_of_every_command_we_send(address: int) -> None:
    d = R2000Driver(address=address, antenna=4, output_power=33)
    sent = [*d.start_commands(), d.ping_command()]
    items = decode(d, b"".join(sent))
    assert [x.raw for x in items] == sent
    assert all(d.is_echo(x) for x in items)
    assert not any(d.reads(x) or d.replies(x, NOW) for x in items)
    # The reader's answers are not echoes.
    for frame in (TagFrame(README_TAG), FirmwareReply(1, 1, 9), StatusReply(1, 0x76, 0x21),
                  InventorySummary(1, 0x89, 0, 1)):
        assert not d.is_echo(frame)


def test_frame_json() -> None:
    d = R2000Driver()
    assert d.frame_json(StatusReply(1, 0x89, 0x22)) == {
        "frame": "status", "address": 1, "cmd": "0x89", "code": "0x22",
        "cmd_name": "real_time_inventory", "code_name": "antenna_missing_error", "ok": False,
        "raw": "A004018922B0"}
    assert d.frame_json(FirmwareReply(1, 1, 9)) == {
        "frame": "firmware", "address": 1, "major": 1, "minor": 9, "cmd": "0x72",
        "cmd_name": "get_firmware_version", "version": "1.9", "raw": "A00501720109DE"}
    summary = d.frame_json(InventorySummary(1, 0x89, 1, 256, 50))
    assert summary["frame"] == "inventory_summary" and summary["antenna"] == 2
    assert (summary["total_read"], summary["read_rate"]) == (256, 50)
    empty = d.frame_json(TagFrame.build(1, 0x89, 4, 0, b"", 0x45))
    assert (empty["frame"], empty["epc"], empty["pc"], empty["frequency_mhz"]) == (
        "tag", "", "0000", 865.5)
    assert d.frame_json(AntennaMissing(1, 2))["antenna"] == 3


# -- the simulated reader and the driver, talking ------------------------------------------------

class Conversation:
    """A gateway (driver + decoder) and a device, the bytes passed by hand."""

    def __init__(self, driver: R2000Driver, device: R2000Device, echo: bool = False) -> None:
        self.driver, self.device, self.echo = driver, device, echo
        self.gateway = driver.decoder()
        self.reads: list[TagRead] = []
        self.frames: list[Any] = []
        self.now = NOW

    def host_sends(self, data: bytes) -> None:
        reply = self.device.on_host_bytes(data, self.now)
        # An RS-485 adapter hears our own bytes before the reader's answer.
        self.gateway_hears((data if self.echo else b"") + reply)

    def gateway_hears(self, data: bytes) -> None:
        rng = random.Random(len(data))
        i = 0
        while i < len(data):  # in random chunks, as a serial port delivers them
            n = rng.randint(1, 40)
            for item in self.gateway.feed(data[i:i + n]):
                assert not isinstance(item, Rejected), item
                if self.driver.is_echo(item):
                    continue
                self.frames.append(item)
                self.reads += self.driver.reads(item)
                for reply in self.driver.replies(item, self.now):
                    self.host_sends(reply)
            i += n

    def round(self, tags: list[SimTag], seconds: float = 0.05) -> None:
        self.now += timedelta(seconds=seconds)
        self.gateway_hears(self.device.read_frames(tags, self.now))


TAGS = [SimTag("E200301666130121155074EF", antenna=1, rssi_dbm=-61),
        SimTag("E28011700000020A1B2C3D4E", antenna=2, rssi_dbm=-45),
        SimTag("300833B2DDD9014000000000", antenna=4)]


@pytest.mark.parametrize("echo", [False, True])
def test_inventory_rounds_keep_going(echo: bool) -> None:
    talk = Conversation(R2000Driver(), R2000Device(rng=random.Random(1)), echo)
    assert not talk.device.inventory_running
    talk.host_sends(b"".join(talk.driver.start_commands()))
    for _ in range(3):
        assert talk.device.inventory_running
        talk.round(TAGS)
    assert [r.tag_id for r in talk.reads] == [t.tag_id for t in TAGS] * 3
    assert [r.antenna for r in talk.reads] == [1, 2, 4] * 3
    assert [r.rssi_dbm for r in talk.reads[:2]] == [-61, -45]
    assert all(r.frequency_mhz is not None and 920.0 <= r.frequency_mhz <= 925.0
               for r in talk.reads)
    summaries = [f for f in talk.frames if isinstance(f, InventorySummary)]
    assert [(s.total_read, s.read_rate) for s in summaries] == [(3, 60)] * 3  # 3 in 0.05 s
    assert talk.device.inventory_running  # the gateway asked for the fourth round


def test_no_round_no_frames() -> None:
    device = R2000Device()
    assert device.read_frames(TAGS, NOW) == b""
    device.on_host_bytes(real_time_inventory_command(), NOW)
    assert device.read_frames([], NOW) == InventorySummary(1, 0x89, 0, 0, 0).raw
    assert device.read_frames(TAGS, NOW) == b""  # the round is over


def test_manual_summary_shape() -> None:
    talk = Conversation(R2000Driver(), R2000Device(summary_len=0x08))
    talk.host_sends(real_time_inventory_command())
    talk.round(TAGS[:2])
    assert talk.frames[-1] == InventorySummary(1, 0x89, 0, 2)
    assert talk.device.inventory_running


def test_ping_and_settings() -> None:
    talk = Conversation(R2000Driver(address=0x01, antenna=3, output_power=25),
                        R2000Device(firmware=(2, 5)))
    talk.host_sends(b"".join(talk.driver.start_commands()) + talk.driver.ping_command())
    assert talk.frames == [StatusReply(1, 0x76, 0x10), StatusReply(1, 0x74, 0x10),
                           FirmwareReply(1, 2, 5)]
    assert talk.driver.is_ping_reply(talk.frames[-1])
    assert (talk.device.work_antenna, talk.device.output_power) == (3, 25)
    talk.round(TAGS[:1])
    assert talk.frames[-1] == InventorySummary(1, 0x89, 2, 1, 20)


def test_device_refuses_what_it_cannot_do() -> None:
    device = R2000Device(connected=frozenset({1, 2}))
    out = device.on_host_bytes(set_work_antenna_command(5) + set_output_power_command(10)
                               + set_work_antenna_command(3), NOW)
    dec = StreamDecoder(R2000Driver().framer())
    assert dec.feed(out) == [StatusReply(1, 0x74, 0x47), StatusReply(1, 0x76, 0x48),
                             StatusReply(1, 0x74, 0x10)]
    # The work antenna (3) has nothing plugged in: 0x89 fails at once, no round runs.
    assert dec.feed(device.on_host_bytes(real_time_inventory_command(), NOW)) == [
        StatusReply(1, 0x89, 0x22)]
    assert not device.inventory_running


def test_device_ignores_other_addresses_and_noise() -> None:
    device = R2000Device(address=0x05)
    assert device.on_host_bytes(get_firmware_command(0x01), NOW) == b""
    assert device.on_host_bytes(b"\x00\xa0\x13garbage", NOW) == b""
    assert device.on_host_bytes(get_firmware_command(0x05)[:3], NOW) == b""
    assert device.on_host_bytes(get_firmware_command(0x05)[3:], NOW) == FirmwareReply(
        5, 1, 9).raw


def test_fast_switch_round_with_a_missing_antenna() -> None:
    talk = Conversation(R2000Driver(fast_switch=[1, 2, 4]),
                        R2000Device(connected=frozenset({1, 4})))
    talk.host_sends(b"".join(talk.driver.start_commands()))
    talk.round(TAGS, seconds=0.25)
    assert [r.tag_id for r in talk.reads] == [TAGS[0].tag_id, TAGS[2].tag_id]
    assert AntennaMissing(1, 1) in talk.frames
    assert talk.frames[-1] == FastSwitchSummary(1, 2, 250)
    assert talk.device.inventory_running  # the next 0x8A round was asked for


def test_eight_port_device_and_driver() -> None:
    tags = [SimTag("E2000000000000000000000A", antenna=7, rssi_dbm=-70),
            SimTag("E2000000000000000000000B", antenna=2)]
    talk = Conversation(R2000Driver("8port"), R2000Device("8port"))
    talk.host_sends(real_time_inventory_command())
    talk.round(tags)
    assert [(r.antenna, r.rssi_dbm) for r in talk.reads][:1] == [(7, -70)]
    assert talk.reads[1].antenna == 2


def test_random_tags_are_epc_96() -> None:
    device = R2000Device(rng=random.Random(4))
    tag_id = device.random_tag_id()
    assert len(tag_id) == 24 and tag_id.startswith("E2") and tag_id == tag_id.upper()
    frame = device.tag_frame(SimTag(tag_id))
    assert frame.epc.hex().upper() == tag_id and frame.pc == 0x3000


def test_every_command_and_short_length_through_the_whole_driver() -> None:
    # Every command code with 0-12 data bytes, checksum-valid: one frame each, and nothing in
    # the driver's API raises on it (whatever shape the bytes happen to take).
    drivers = [R2000Driver(), R2000Driver("8port")]
    for cmd in range(256):
        for size in range(13):
            for fill in (0x10, 0xA0):
                raw = bytes((0xA0, size + 3, 0x01, cmd)) + bytes((fill,)) * size
                raw += bytes(((-sum(raw)) & 0xFF,))
                [frame] = decode(drivers[0], raw)
                assert frame.raw == raw
                for d in drivers:
                    has_epc = isinstance(frame, TagFrame) and len(raw) > 9
                    assert len(d.reads(frame)) == (1 if has_epc else 0)
                    assert d.frame_json(frame)["raw"] == raw.hex().upper()
                    assert d.is_echo(frame) == isinstance(frame, Command)
                    assert d.replies(frame, NOW) in ([], [d.inventory_command()])
