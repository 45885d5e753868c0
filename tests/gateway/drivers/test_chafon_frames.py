"""Chafon frames: the README's example commands and hand-built replies decoded by hand, the CRC's
known answers, and decode(encode(x)) == x for every frame kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers.base import Rejected
from gateway.drivers.chafon.crc import crc16_mcrf4xx, crc16_mcrf4xx_bitwise
from gateway.drivers.chafon.framer import ChafonFramer
from gateway.drivers.chafon.frames import (
    KNOWN_COMMANDS,
    TAG_STATUSES,
    ChafonFrameError,
    Command,
    InventoryReply,
    InventoryTag,
    ReaderInfoReply,
    Reply,
)

EPC = bytes.fromhex("E200301666130121155074EF")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def decode_one(data: bytes, model: str = "uhfreader288", direction: str = "reply") -> object:
    consumed, item = ChafonFramer(model, direction=direction).decode(data)  # type: ignore[arg-type]
    assert consumed == len(data), item
    return item


# -- CRC-16/MCRF4XX known answers ------------------------------------------------------------


@pytest.mark.parametrize("crc", [crc16_mcrf4xx, crc16_mcrf4xx_bitwise])
def test_crc_check_value(crc) -> None:
    # The catalogued check value of CRC-16/MCRF4XX.
    assert crc(b"123456789") == 0x6F91


@pytest.mark.parametrize("crc", [crc16_mcrf4xx, crc16_mcrf4xx_bitwise])
def test_crc_of_readme_commands(crc) -> None:
    # README: "04 FF 21 19 95" and "04 FF 01 1B B4"; the CRC travels LSB first.
    assert crc(h("04 FF 21")) == 0x9519
    assert crc(h("04 FF 01")) == 0xB41B


def test_crc_of_empty_input_is_the_preset() -> None:
    assert crc16_mcrf4xx(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_fast_crc_equals_the_bitwise_reference(data: bytes) -> None:
    assert crc16_mcrf4xx(data) == crc16_mcrf4xx_bitwise(data)


# -- the README's commands, decoded by hand --------------------------------------------------


def test_get_reader_info_command() -> None:
    # 04: Len = len(Data) + 4, no data; FF: broadcast; 21: get reader information; 19 95: CRC.
    raw = h("04 FF 21 19 95")
    assert decode_one(raw, direction="command") == Command(0xFF, 0x21, b"", raw)
    assert Command(0xFF, 0x21).encode() == raw


def test_uhfreader18_inventory_command() -> None:
    raw = h("04 FF 01 1B B4")  # Len 4, broadcast, Cmd 0x01 inventory, CRC 0xB41B
    assert decode_one(raw, direction="command") == Command(0xFF, 0x01, b"", raw)
    assert Command(0xFF, 0x01).encode() == raw


def test_a_bare_command_on_the_reply_side_is_a_command() -> None:
    # Len 4 leaves no room for a status byte, so the gateway reads it as a command (an echo).
    assert decode_one(h("04 FF 01 1B B4")) == Command(0xFF, 0x01, b"", h("04 FF 01 1B B4"))


# -- replies built by hand from the README's layouts (CRCs from the bitwise reference) -------

UHF18_TWO_TAGS = h("18 00 01 01 02 0C E2 00 30 16 66 13 01 21 15 50 74 EF 04 30 00 12 34 12 36")
UHF288_ANT3 = h("15 00 01 03 04 01 0C E2 00 30 16 66 13 01 21 15 50 74 EF 5A 8B 75")


def test_uhfreader18_inventory_reply_by_hand() -> None:
    # Len 0x18, Adr 00, reCmd 01, Status 01 (done), Num 2,
    # EPCLen 12 + E200301666130121155074EF, EPCLen 4 + 30001234, CRC 12 36.
    frame = decode_one(UHF18_TWO_TAGS, model="uhfreader18")
    assert frame == InventoryReply(
        address=0x00, status=0x01,
        tags=(InventoryTag(EPC, None), InventoryTag(h("30001234"), None)),
        antenna_mask=None, raw=UHF18_TWO_TAGS)
    assert isinstance(frame, InventoryReply) and frame.final


def test_uhfreader288_inventory_reply_by_hand() -> None:
    # Len 0x15, Adr 00, reCmd 01, Status 03 (more follow), Ant 04 (antenna 3), Num 1,
    # EPCLen 12 + EPC, RSSI 0x5A, CRC 8B 75.
    frame = decode_one(UHF288_ANT3, model="uhfreader288")
    assert frame == InventoryReply(0x00, 0x03, (InventoryTag(EPC, 0x5A),), 0x04, UHF288_ANT3)
    assert isinstance(frame, InventoryReply) and not frame.final


def test_empty_final_frames_by_hand() -> None:
    raw18 = h("06 00 01 01 00 14 48")  # status done, Num 0
    raw288 = h("07 00 01 01 01 00 1E 4B")  # status done, Ant 1, Num 0
    assert decode_one(raw18, "uhfreader18") == InventoryReply(0, 1, (), None, raw18)
    assert decode_one(raw288) == InventoryReply(0, 1, (), 0x01, raw288)


def test_reader_info_reply_by_hand() -> None:
    # Len 0x0D, Adr 00, reCmd 21, Status 00, Version 3.1, Type 09, Tr_Type 02,
    # dmaxfre 31, dminfre 80, Power 1E (30), Scntm 0A (10 x 100 ms), CRC FC 4F.
    raw = h("0D 00 21 00 03 01 09 02 31 80 1E 0A FC 4F")
    frame = decode_one(raw)
    assert frame == ReaderInfoReply(0x00, h("03 01 09 02 31 80 1E 0A"), 0x00, raw)
    assert isinstance(frame, ReaderInfoReply)
    assert frame.version == (3, 1)
    assert frame.reader_type == 0x09
    assert frame.info_field("power") == 30
    assert frame.info_field("scan_time") == 10
    assert frame.extra == b""


def test_antenna_error_without_data_is_kept_raw() -> None:
    raw = h("05 00 01 F8 69 0F")
    assert decode_one(raw) == Reply(0x00, 0x01, 0xF8, b"", raw)


def test_unknown_status_is_kept_raw() -> None:
    raw = h("05 00 01 FB F2 3D")
    assert decode_one(raw) == Reply(0x00, 0x01, 0xFB, b"", raw)


def test_288_reply_read_as_18_is_a_layout_error() -> None:
    consumed, item = ChafonFramer("uhfreader18").decode(UHF288_ANT3)
    assert consumed == len(UHF288_ANT3)
    assert item == Rejected("bad_layout", UHF288_ANT3)


def test_encoding_refuses_oversized_frames() -> None:
    with pytest.raises(ChafonFrameError):
        Command(0xFF, 0x01, bytes(93))
    with pytest.raises(ChafonFrameError):
        InventoryReply(0, 1, (InventoryTag(EPC, None),), 0x01)  # 288 layout needs an RSSI


# -- decode(encode(x)) == x ------------------------------------------------------------------

addresses = st.integers(0, 0xFF)
known_cmds = st.sampled_from(sorted(KNOWN_COMMANDS))


@st.composite
def inventory_replies(draw: st.DrawFn, model: str) -> InventoryReply:
    is288 = model == "uhfreader288"
    tags = draw(st.lists(st.builds(InventoryTag, st.binary(max_size=12),
                                   st.integers(0, 255) if is288 else st.none()),
                         max_size=6))
    return InventoryReply(draw(addresses), draw(st.sampled_from(sorted(TAG_STATUSES))),
                          tuple(tags), draw(st.integers(0, 255)) if is288 else None)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    cmd = draw(known_cmds)
    status = draw(st.integers(0, 255))
    # Those two pairs have their own frame classes.
    if (cmd == 0x01 and status in TAG_STATUSES) or (cmd == 0x21 and status == 0):
        status = 0xFE
    return Reply(draw(addresses), cmd, status, draw(st.binary(max_size=91)))


@given(inventory_replies("uhfreader288"))
def test_roundtrip_inventory_288(frame: InventoryReply) -> None:
    assert decode_one(frame.encode(), "uhfreader288") == frame


@given(inventory_replies("uhfreader18"))
def test_roundtrip_inventory_18(frame: InventoryReply) -> None:
    assert decode_one(frame.encode(), "uhfreader18") == frame


@given(st.builds(ReaderInfoReply, addresses, st.binary(max_size=91)))
def test_roundtrip_reader_info(frame: ReaderInfoReply) -> None:
    assert decode_one(frame.encode()) == frame


@given(replies())
def test_roundtrip_reply(frame: Reply) -> None:
    assert decode_one(frame.encode()) == frame


@given(st.builds(Command, addresses, known_cmds, st.binary(max_size=92)))
def test_roundtrip_command(frame: Command) -> None:
    assert decode_one(frame.encode(), direction="command") == frame
