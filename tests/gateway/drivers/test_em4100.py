"""EM4100 ASCII frames: the README example built by hand, XOR known answers, round trips, the
framer on streams (whole, byte by byte, random chunks, stray bytes, damage), the driver and the
simulated reader."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.devices import device_class
from firmware_sim.devices.base import SimTag
from gateway.drivers import make_driver
from gateway.drivers.base import Rejected, StreamDecoder
from gateway.drivers.em4100.framer import EM4100Framer
from gateway.drivers.em4100.frames import EM4100Frame, EM4100FrameError, xor_checksum
from gateway.drivers.em4100.protocol import EM4100Driver
from pak.types import TagRead
from tests.gateway.drivers.streams import feed_in_pieces, frames_of, stream_bytes

NOW = datetime(2026, 11, 28, 6, 15, 2, tzinfo=UTC)

# README section 4: id 62E3086CED, checksum 08, written out byte by byte:
# STX, "6" "2" "E" "3" "0" "8" "6" "C" "E" "D", "0" "8", ETX.
README_FRAME = bytes([0x02, 0x36, 0x32, 0x45, 0x33, 0x30, 0x38, 0x36, 0x43, 0x45, 0x44,
                      0x30, 0x38, 0x03])
README_FRAME_CRLF = README_FRAME[:13] + bytes([0x0D, 0x0A, 0x03])


def decode_all(data: bytes, sizes: list[int] | None = None) -> list:
    dec = StreamDecoder(EM4100Framer())
    return feed_in_pieces(dec, data, sizes) + dec.flush()


def reasons(items: list) -> list[str]:
    return [x.reason for x in items if isinstance(x, Rejected) and x.reason != "garbage"]


# -- known answers ---------------------------------------------------------------------------


def test_xor_checksum_known_answers() -> None:
    # 62 ^ E3 = 81, ^ 08 = 89, ^ 6C = E5, ^ ED = 08: the README's checksum.
    assert xor_checksum(bytes.fromhex("62E3086CED")) == 0x08
    assert xor_checksum(bytes.fromhex("0000000000")) == 0x00
    assert xor_checksum(bytes.fromhex("FF00000000")) == 0xFF
    assert xor_checksum(bytes.fromhex("0102040810")) == 0x1F


def test_readme_example() -> None:
    assert decode_all(README_FRAME) == [EM4100Frame("62E3086CED", False, README_FRAME)]
    frame = frames_of(decode_all(README_FRAME))[0]
    assert isinstance(frame, EM4100Frame)
    assert (frame.version, frame.card_id, frame.checksum) == (0x62, 0xE3086CED, 0x08)
    assert EM4100Frame("62E3086CED").encode() == README_FRAME


def test_readme_example_with_crlf() -> None:
    assert decode_all(README_FRAME_CRLF) == [EM4100Frame("62E3086CED", True, README_FRAME_CRLF)]
    assert EM4100Frame("62E3086CED", crlf=True).encode() == README_FRAME_CRLF


def test_lower_case_hex_is_accepted_and_the_id_upper_cased() -> None:
    raw = README_FRAME.replace(b"E", b"e").replace(b"C", b"c").replace(b"D", b"d")
    [frame] = decode_all(raw)
    assert frame == EM4100Frame("62E3086CED", False, raw)


def test_encode_refuses_a_bad_id() -> None:
    for bad in ("62E3086CE", "62e3086ced", "62E3086CEG"):
        with pytest.raises(EM4100FrameError):
            EM4100Frame(bad)


@given(st.binary(min_size=5, max_size=5), st.booleans())
def test_roundtrip(data: bytes, crlf: bool) -> None:
    frame = EM4100Frame(data.hex().upper(), crlf)
    assert decode_all(frame.encode()) == [frame]
    assert frame.data == data


# -- streams ---------------------------------------------------------------------------------

FRAMES = [EM4100Frame("62E3086CED"), EM4100Frame("0102030405", True)]


@pytest.mark.parametrize("frame", FRAMES, ids=["plain", "crlf"])
@pytest.mark.parametrize("sizes", [None, [1], [3, 1, 7, 2]], ids=["whole", "bytewise", "random"])
def test_each_frame_in_any_chunking(frame: EM4100Frame, sizes: list[int] | None) -> None:
    assert decode_all(frame.raw * 3, sizes) == [frame] * 3


@pytest.mark.parametrize("frame", FRAMES, ids=["plain", "crlf"])
@pytest.mark.parametrize("stray", [b"\x02", b"\x55\xaa", b"\xa0", b"\x0262E3", b"\x03\r\n"])
def test_frame_after_stray_bytes(frame: EM4100Frame, stray: bytes) -> None:
    for sizes in (None, [1]):
        items = decode_all(stray + frame.raw, sizes)
        assert frames_of(items) == [frame]
        assert stream_bytes(items) == stray + frame.raw


def test_rejection_reasons() -> None:
    good = README_FRAME
    cases = {
        "bad_checksum": README_FRAME[:11] + b"09\x03",
        "not_hex": README_FRAME[:5] + b"G" + README_FRAME[6:],
        "truncated": README_FRAME[:7],  # cut short by the next frame's STX
        "bad_terminator": README_FRAME[:13] + b"\x04",
    }
    for reason, bad in cases.items():
        items = decode_all(good + bad + good)
        assert frames_of(items) == [EM4100Frame("62E3086CED")] * 2, reason
        assert [x.reason for x in items if isinstance(x, Rejected)] == [reason], reason


def test_bad_crlf_terminator() -> None:
    bad = README_FRAME[:13] + b"\r\r\x03"
    items = decode_all(bad + README_FRAME)
    assert items == [Rejected("bad_terminator", bad), EM4100Frame("62E3086CED")]


def test_prefix_at_end_of_input_is_truncated() -> None:
    assert decode_all(README_FRAME + README_FRAME_CRLF[:14]) == [
        EM4100Frame("62E3086CED"), Rejected("truncated", README_FRAME_CRLF[:14])]


chunk_sizes = st.lists(st.integers(1, 256), min_size=1, max_size=20)


@given(st.binary(max_size=600), chunk_sizes)
def test_arbitrary_bytes_never_raise_and_chunking_does_not_matter(
        data: bytes, sizes: list[int]) -> None:
    whole = decode_all(data)
    chunked = decode_all(data, sizes)
    assert stream_bytes(whole) == data
    assert stream_bytes(chunked) == data
    # How garbage splits into runs depends on the chunking; frames and damage reports do not.
    assert frames_of(chunked) == frames_of(whole)
    assert reasons(chunked) == reasons(whole)


# Garbage biased towards the bytes the framer cares about.
garbage = st.lists(st.sampled_from(b"\x02\x03\r\n0123456789ABCDEFGa\x00\xff"),
                   max_size=30).map(bytes) | st.binary(max_size=30)


@given(st.lists(st.tuples(garbage, st.binary(min_size=5, max_size=5), st.booleans()),
                min_size=1, max_size=10), chunk_sizes)
def test_valid_frames_in_garbage_all_come_out_in_order(parts, sizes: list[int]) -> None:
    frames = [EM4100Frame(d.hex().upper(), crlf) for _, d, crlf in parts]
    data = b"".join(g + f.raw for (g, _, _), f in zip(parts, frames, strict=True))
    items = decode_all(data, sizes)
    assert stream_bytes(items) == data
    out = iter(frames_of(items))
    for f in frames:  # a subsequence: garbage may hold frames of its own
        assert any(g == f for g in out), f


# -- driver and simulated reader -------------------------------------------------------------


def test_driver_defaults_and_reads() -> None:
    d = make_driver("em4100")
    assert isinstance(d, EM4100Driver)
    assert (d.default_baud, d.default_exit_after) == (9600, 1.5)
    assert d.start_commands() == [] and d.ping_command() is None
    [frame] = frames_of(d.decoder().feed(README_FRAME))
    assert d.reads(frame) == [TagRead("em4100", "62E3086CED", "em4100", README_FRAME)]
    assert d.reads(frame)[0].to_json()["raw"] == "0236324533303836434544303803"
    assert d.frame_json(frame)["tag_id"] == "62E3086CED"


@pytest.mark.parametrize("model,length", [("rdm6300", 14), ("crlf", 16)])
def test_device_frames_decode(model: str, length: int) -> None:
    device = device_class("em4100")(model, random.Random(3))
    assert device.inventory_running
    assert device.on_host_bytes(b"anything", NOW) == b""
    tags = [SimTag(device.random_tag_id()) for _ in range(5)]
    data = device.read_frames(tags, NOW)
    assert len(data) == 5 * length
    driver = make_driver("em4100")
    dec = driver.decoder()
    reads = [r for x in frames_of(dec.feed(data)) for r in driver.reads(x)]
    assert [r.tag_id for r in reads] == [t.tag_id for t in tags]
    assert dec.stats.rejected_bytes == 0
