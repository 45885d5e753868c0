"""The Chafon driver (commands, replies owed, echoes, TagReads, model difference) and the
simulated reader answering it, wired through StreamDecoders with no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from firmware_sim.devices import device_class
from firmware_sim.devices.base import SimTag
from firmware_sim.devices.chafon import ChafonDevice
from gateway.drivers import make_driver
from gateway.drivers.base import Frame, Rejected
from gateway.drivers.chafon.frames import (
    Command,
    InventoryReply,
    InventoryTag,
    ReaderInfoReply,
    Reply,
)
from gateway.drivers.chafon.protocol import ANTENNA_OF_MASK, ChafonDriver
from pak.types import TagRead

NOW = datetime(2026, 11, 28, 6, 15, 2, tzinfo=UTC)
EPC_HEX = "E200301666130121155074EF"
UHF18_TWO_TAGS = bytes.fromhex(
    "18 00 01 01 02 0C E2 00 30 16 66 13 01 21 15 50 74 EF 04 30 00 12 34 12 36")
UHF288_ANT3 = bytes.fromhex("15 00 01 03 04 01 0C E2 00 30 16 66 13 01 21 15 50 74 EF 5A 8B 75")


def frames(items: list[Frame | Rejected]) -> list[Frame]:
    out = [x for x in items if not isinstance(x, Rejected)]
    assert len(out) == len(items), items
    return out


def test_registry_and_defaults() -> None:
    d = make_driver("chafon")
    assert isinstance(d, ChafonDriver)
    assert d.model == "uhfreader288"
    assert ChafonDriver.models == ("uhfreader288", "uhfreader18")
    assert (d.default_baud, d.default_exit_after, d.transport) == (57600, 3.0, "serial")
    with pytest.raises(ValueError):
        make_driver("chafon", "uhfreader99")


def test_commands_match_the_readme() -> None:
    d18 = make_driver("chafon", "uhfreader18")
    assert d18.start_commands() == [bytes.fromhex("04 FF 01 1B B4")]
    assert d18.ping_command() == bytes.fromhex("04 FF 21 19 95")
    d288 = ChafonDriver()
    assert d288.ping_command() == bytes.fromhex("04 FF 21 19 95")
    # The 288's inventory carries QValue 4 and Session 0: Len 6, CRC over 06 FF 01 04 00.
    assert d288.start_commands() == [Command(0xFF, 0x01, b"\x04\x00").raw]
    assert ChafonDriver(address=0x00).ping_command()[:3] == b"\x04\x00\x21"


def test_uhfreader18_reads() -> None:
    d = make_driver("chafon", "uhfreader18")
    [frame] = frames(d.decoder().feed(UHF18_TWO_TAGS))
    assert d.reads(frame) == [
        TagRead("chafon", EPC_HEX, "epc", UHF18_TWO_TAGS),
        TagRead("chafon", "30001234", "epc", UHF18_TWO_TAGS),
    ]


def test_uhfreader288_reads() -> None:
    d = make_driver("chafon")
    [frame] = frames(d.decoder().feed(UHF288_ANT3))
    # Ant 0x04 is antenna 3; RSSI 0x5A kept raw, no documented dBm conversion.
    assert d.reads(frame) == [
        TagRead("chafon", EPC_HEX, "epc", UHF288_ANT3, antenna=3, rssi_raw=0x5A)]


def test_model_difference() -> None:
    # The same bytes under the other model setting do not fit the layout: counted, no reads.
    d18 = make_driver("chafon", "uhfreader18")
    dec = d18.decoder()
    assert dec.feed(UHF288_ANT3) == [Rejected("bad_layout", UHF288_ANT3)]
    assert dec.stats.rejected["bad_layout"] == 1
    # An 18 reply read as 288: Num (2) taken as the antenna byte and so on: a layout error too.
    assert make_driver("chafon").decoder().feed(UHF18_TWO_TAGS)[0].kind == "rejected"


def test_antenna_of_mask() -> None:
    assert [ANTENNA_OF_MASK[m] for m in (1, 2, 4, 8, 16)] == [1, 2, 3, 4, 5]
    assert ANTENNA_OF_MASK[0] is None
    assert ANTENNA_OF_MASK[0x05] is None  # two antennas: not one we can name


def test_replies_reissue_inventory_after_the_final_frame_only() -> None:
    d = ChafonDriver()
    inv = d.inventory_command()
    assert d.replies(InventoryReply(0, 0x03, (), 1), NOW) == []
    for status in (0x01, 0x02, 0x04, 0xF8):
        assert d.replies(InventoryReply(0, status, (), 1), NOW) == [inv]
    assert d.replies(Reply(0, 0x01, 0xFB), NOW) == [inv]
    assert d.replies(Reply(0, 0x01, 0x26, bytes(7)), NOW) == []  # statistics after the final
    assert d.replies(ReaderInfoReply(0, bytes(8)), NOW) == []


def test_ping_reply_and_echo() -> None:
    d = ChafonDriver()
    dec = d.decoder()
    # An RS-485 adapter hears our own commands: both come back as echoes, not as replies.
    items = frames(dec.feed(d.inventory_command() + d.ping_command()))
    assert [d.is_echo(x) for x in items] == [True, True]
    assert [d.reads(x) for x in items] == [[], []]
    assert d.replies(items[0], NOW) == []
    info = ReaderInfoReply(0x00, bytes.fromhex("0301090231801E0A"))
    [frame] = frames(dec.feed(info.raw))
    assert d.is_ping_reply(frame) and not d.is_echo(frame)
    assert d.frame_json(frame)["version"] == "3.1"


def test_tags_with_empty_epc_make_no_read() -> None:
    d = ChafonDriver()
    frame = InventoryReply(0, 1, (InventoryTag(b"", 0x40), InventoryTag(b"\x30\x00", 0x41)), 1)
    assert [r.tag_id for r in d.reads(frame)] == ["3000"]


# -- the simulated reader ---------------------------------------------------------------------


def exchange(model: str, tags: list[SimTag]) -> tuple[ChafonDriver, list, ChafonDevice]:
    """One inventory round, gateway <-> device, through both sides' stream decoders."""
    driver = ChafonDriver(model)
    device = device_class("chafon")(model, random.Random(1))
    assert isinstance(device, ChafonDevice)
    dec = driver.decoder()
    assert not device.inventory_running
    for cmd in driver.start_commands():
        # Commands in awkward chunks, as a serial line may deliver them.
        for i in range(len(cmd)):
            assert device.on_host_bytes(cmd[i:i + 1], NOW) == b""
    assert device.inventory_running
    items = dec.feed(device.read_frames(tags, NOW))
    assert not device.inventory_running
    return driver, items, device


@pytest.mark.parametrize("model", ["uhfreader288", "uhfreader18"])
def test_device_round_with_many_tags(model: str) -> None:
    tags = [SimTag(f"E2{i:022X}", antenna=1 + i % 2) for i in range(20)]
    driver, items, _ = exchange(model, tags)
    assert all(isinstance(x, InventoryReply) for x in items)
    statuses = [x.status for x in items]
    assert len(items) > 1
    assert statuses == [0x03] * (len(items) - 1) + [0x01]
    reads = [r for x in items for r in driver.reads(x)]
    assert sorted(r.tag_id for r in reads) == sorted(t.tag_id for t in tags)
    if model == "uhfreader288":
        assert {(r.tag_id, r.antenna) for r in reads} == {(t.tag_id, t.antenna) for t in tags}
        assert all(r.rssi_raw is not None for r in reads)
    else:
        assert all(r.antenna is None and r.rssi_raw is None for r in reads)
    # Only the final frame asks for the next round.
    assert [driver.replies(x, NOW) for x in items] == (
        [[]] * (len(items) - 1) + [[driver.inventory_command()]])


def test_device_round_with_no_tags() -> None:
    _, items, _ = exchange("uhfreader288", [])
    assert len(items) == 1
    assert isinstance(items[0], InventoryReply) and items[0].status == 0x01
    assert items[0].tags == ()


def test_device_answers_reader_info_and_ignores_other_addresses() -> None:
    driver = ChafonDriver()
    device = ChafonDevice(address=0x03)
    reply = device.on_host_bytes(driver.ping_command(), NOW)
    [frame] = frames(driver.decoder().feed(reply))
    assert driver.is_ping_reply(frame)
    assert isinstance(frame, ReaderInfoReply) and frame.address == 0x03
    assert len(frame.data) == 12  # the 288 form
    assert device.on_host_bytes(ChafonDriver(address=0x04).ping_command(), NOW) == b""
    assert device.on_host_bytes(b"\x55\xaa\x00", NOW) == b""  # noise: no answer
