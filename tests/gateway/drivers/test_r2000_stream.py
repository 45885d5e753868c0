"""The R2000 framer on streams: whole, byte by byte, in random chunks, after stray bytes, with
bad checksums and corrupted lengths, in garbage; arbitrary bytes never raise and never lose or
invent a byte."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers.base import Rejected, StreamDecoder
from gateway.drivers.r2000.framer import R2000Framer
from gateway.drivers.r2000.frames import (
    AntennaMissing,
    Command,
    FastSwitchSummary,
    FirmwareReply,
    InventorySummary,
    RawFrame,
    StatusReply,
    TagFrame,
    frame_bytes,
    pc_for_epc,
)
from tests.gateway.drivers.streams import feed_in_pieces

README_TAG = bytes.fromhex("A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF")
SUMMARY = InventorySummary(0x01, 0x89, 0, 2, 40)
FIRMWARE = FirmwareReply(0x01, 1, 9)


def tag(epc: bytes, cmd: int = 0x89, freq_ant: int = 0xAC, rssi: int = 0x45) -> TagFrame:
    return TagFrame.build(0x01, cmd, freq_ant, pc_for_epc(epc), epc, rssi)


# One of each kind the gateway side meets.
SAMPLES: list[Any] = [
    TagFrame(README_TAG),
    tag(bytes.fromhex("11223344"), cmd=0x8A),
    tag(b""),
    SUMMARY,
    InventorySummary(0x01, 0x89, 3, 7),
    FastSwitchSummary(0x01, 12, 340),
    AntennaMissing(0x01, 1),
    StatusReply(0x01, 0x89, 0x22),
    StatusReply(0x01, 0x74, 0x10),
    FIRMWARE,
    RawFrame(0x01, 0xEE, b"\x01\x02"),
]


def feed(data: bytes, sizes: list[int] | None = None, framer: R2000Framer | None = None,
         flush: bool = True) -> list[Any]:
    dec = StreamDecoder(framer or R2000Framer())
    out: list[Any] = feed_in_pieces(dec, data, sizes)
    return out + dec.flush() if flush else out


def frames_of(items: list[Any]) -> list[Any]:
    return [x for x in items if not isinstance(x, Rejected)]


def stream_bytes(items: list[Any]) -> bytes:
    return b"".join(x.data if isinstance(x, Rejected) else x.raw for x in items)


def random_sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 256) if rng.random() < 0.5 else rng.randint(1, 8)
            for _ in range(64)]


CHUNKINGS = {"whole": None, "bytewise": [1], "small": [3, 1, 7, 2, 11], "random": random_sizes(7)}


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_each_frame_in_any_chunking(frame: Any, chunking: str) -> None:
    assert feed(frame.raw * 3, CHUNKINGS[chunking]) == [frame] * 3


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
@pytest.mark.parametrize("stray", ["A0", "A0 A0", "A0 A0 A0", "A0 FF", "A0 00", "A0 13 01",
                                   "A0 FF 01 EE 00", "55 AA", "02", "A0 03 01"])
def test_frame_after_stray_bytes(frame: Any, stray: str) -> None:
    junk = bytes.fromhex(stray)
    for sizes in (None, [1], [2, 5]):
        items = feed(junk + frame.raw + SUMMARY.raw, sizes)
        assert frames_of(items) == [frame, SUMMARY]
        assert stream_bytes(items) == junk + frame.raw + SUMMARY.raw


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
def test_bad_checksum_drops_only_that_frame(frame: Any) -> None:
    bad = frame.raw[:-1] + bytes(((frame.raw[-1] + 1) & 0xFF,))
    for sizes in (None, [1]):
        items = feed(FIRMWARE.raw + bad + frame.raw, sizes)
        assert frames_of(items) == [FIRMWARE, frame]
        rejected = [x for x in items if isinstance(x, Rejected)]
        assert rejected and rejected[0].reason == "bad_checksum"
        assert b"".join(x.data for x in rejected) == bad


def test_garbage_is_dropped_in_one_run() -> None:
    items = feed(b"\x01\x02\x03\x04" + README_TAG)
    assert items == [Rejected("garbage", b"\x01\x02\x03\x04"), TagFrame(README_TAG)]


@pytest.mark.parametrize("epc", [
    "A0 A0 A0 A0 A0 A0 A0 A0 A0 A0 A0 A0",
    "A0 13 01 89 04 30 00 E2 00 30 16 66",  # the start of another tag frame
    "A0 05 01 72 01 09 DF 00 00 00 00 A0",  # a firmware reply with a bad check, a stray head
    "A0 FF 00 00 00 00 00 00 00 00 00 00",
    "00 A0 0A 01 89 00 00 0A 00 00 00 00",  # most of a summary
])
def test_an_a0_inside_an_epc(epc: str) -> None:
    frame = tag(bytes.fromhex(epc))
    for sizes in CHUNKINGS.values():
        assert feed(frame.raw + SUMMARY.raw, sizes) == [frame, SUMMARY]
    # Cut anywhere: a plausible frame head is waited for while anything behind it still
    # waits for bytes too.
    for cut in range(1, len(frame.raw)):
        assert feed(frame.raw + SUMMARY.raw, [cut, 1000]) == [frame, SUMMARY]


def test_an_epc_holding_a_whole_frame() -> None:
    # The price of never stalling (framer rule 5): delivered whole, the tag frame comes out;
    # cut right after the frame inside its EPC, with nothing else pending, it is taken for a
    # frame that lost bytes.
    frame = tag(bytes.fromhex("E2 00 A0 03 01 72 EA 00 00 00 00 00"))
    assert feed(frame.raw + SUMMARY.raw) == [frame, SUMMARY]
    assert feed(frame.raw + SUMMARY.raw, [14, 1000]) == [
        Rejected("truncated", frame.raw[:9]), Command(0x01, 0x72),
        Rejected("garbage", frame.raw[14:]), SUMMARY]


@pytest.mark.parametrize("length", [x for x in range(256) if x != 0x13])
def test_a_corrupted_len_does_not_swallow_the_frames_behind_it(length: int) -> None:
    bad = README_TAG[:1] + bytes((length,)) + README_TAG[2:]
    good: list[Any] = [FIRMWARE, TagFrame(README_TAG), SUMMARY]
    data = bad + b"".join(f.raw for f in good)
    for sizes in (None, [1], [4, 9]):
        items = feed(data, sizes)
        assert frames_of(items)[-3:] == good, length
        assert stream_bytes(items) == data


def test_a_stray_head_does_not_stall_the_round_summary() -> None:
    # 0xA0 0xFF ... 0xEE announces a 257-byte frame of an unknown command. The reader sends the
    # round's summary and then waits for our next command: it must come out now, not after
    # 257 bytes that never come.
    dec = StreamDecoder(R2000Framer())
    items = dec.feed(bytes.fromhex("A0 FF 01 EE") + SUMMARY.raw)
    assert items == [Rejected("bad_length", bytes.fromhex("A0 FF 01 EE")), SUMMARY]
    assert dec.pending == 0


def test_a_truncated_frame_does_not_stall_the_round_summary() -> None:
    # A tag frame lost all but its first 6 bytes (its head and PC are plausible); the round's
    # summary follows and the reader waits for us: the summary comes out now.
    head = README_TAG[:6]
    dec = StreamDecoder(R2000Framer())
    assert dec.feed(head + SUMMARY.raw[:5]) == []  # the summary is not all in yet: wait
    assert dec.feed(SUMMARY.raw[5:]) == [Rejected("truncated", head), SUMMARY]
    assert dec.pending == 0


def test_a_plausible_head_waits_while_bytes_are_missing() -> None:
    head = README_TAG[:6]
    dec = StreamDecoder(R2000Framer())
    # A complete frame behind it, but then another frame's beginning: the reader is still
    # talking, the head may yet complete.
    assert dec.feed(head + FIRMWARE.raw + README_TAG[:4]) == []
    items = dec.feed(README_TAG[4:])
    assert frames_of(items) == [FIRMWARE, TagFrame(README_TAG)]


def test_a_lost_byte_costs_one_frame() -> None:
    # A UART overrun drops a byte from the middle of a tag frame: that frame is lost (its
    # checksum fails), the ones around it are not.
    cut = README_TAG[:10] + README_TAG[11:]
    for sizes in (None, [1], [5, 3]):
        items = feed(FIRMWARE.raw + cut + README_TAG + SUMMARY.raw, sizes)
        assert frames_of(items) == [FIRMWARE, TagFrame(README_TAG), SUMMARY]


def test_a_raw_frame_holding_a_frame_head_is_cut() -> None:
    # "A0 0A 01 EE ??" claims 12 bytes that end exactly with the firmware reply behind it, and
    # ?? is chosen so they sum to 0: noise passing the checksum (one time in 256) as a frame of
    # an unknown command that would swallow a good frame. The good frame wins.
    head = bytes.fromhex("A0 0A 01 EE")
    filler = -(sum(head) + sum(FIRMWARE.raw)) & 0xFF
    data = head + bytes((filler,)) + FIRMWARE.raw + SUMMARY.raw
    assert sum(data[:12]) % 256 == 0
    for sizes in (None, [1], [12, 100]):
        items = feed(data, sizes)
        assert items == [Rejected("bad_length", data[:5]), FIRMWARE, SUMMARY]


def test_echoes_of_our_commands() -> None:
    ours = [bytes.fromhex("A0 04 FF 89 01 D3"), bytes.fromhex("A0 04 01 74 22 C5")]
    framer = R2000Framer(echoes=ours)
    items = feed(b"".join(ours), None, framer)
    assert items == [Command(0xFF, 0x89, b"\x01"), Command(0x01, 0x74, b"\x22")]
    # Without the echo list, 0x22 is an error code: the same bytes read as a status reply.
    assert feed(ours[1]) == [StatusReply(0x01, 0x74, 0x22)]


# -- properties --------------------------------------------------------------------------------

byte = st.integers(0, 255)


# Garbage rich in what confuses framers: frame heads, lengths, tag commands, PC high bytes.
garbage = st.lists(st.one_of(st.sampled_from([0xA0, 0x13, 0x0A, 0x04, 0x89, 0x30, 0x01, 0xFF]),
                             byte), max_size=40).map(bytes)


@st.composite
def tag_frames(draw: st.DrawFn) -> TagFrame:
    epc = draw(st.binary(min_size=0, max_size=16).map(lambda b: b + b"\x00" * (len(b) % 2)))
    return tag(epc, draw(st.sampled_from([0x89, 0x8A, 0x8B])), draw(byte), draw(byte))


good_frames = st.one_of(tag_frames(), st.sampled_from(SAMPLES))


@given(st.binary(max_size=600), st.lists(st.integers(1, 300), min_size=1, max_size=30))
def test_any_bytes_never_raise_and_every_byte_is_accounted_for(data: bytes,
                                                               sizes: list[int]) -> None:
    items = feed(data, sizes)
    assert stream_bytes(items) == data


# Command codes the framer treats specially, and any other.
commands = st.one_of(st.sampled_from([0x72, 0x74, 0x75, 0x76, 0x77, 0x89, 0x8A, 0x8B]), byte)


# Frame data of every length, the shortest (the edge cases of every layout) most often.
frame_data = st.one_of(st.binary(max_size=3), st.binary(max_size=12), st.binary(max_size=70))


@given(st.lists(st.one_of(garbage, st.builds(frame_bytes, byte, commands, frame_data)),
                max_size=12),
       st.lists(st.integers(1, 300), min_size=1, max_size=30),
       st.sampled_from(["reply", "command"]))
def test_any_valid_frames_and_garbage_never_raise(parts: list[bytes], sizes: list[int],
                                                  direction: Any) -> None:
    # Checksum-valid frames of any command, length and content, which random bytes rarely are.
    data = b"".join(parts)
    items = feed(data, sizes, R2000Framer(direction))
    assert stream_bytes(items) == data


@pytest.mark.parametrize("direction", ["reply", "command"])
def test_every_command_without_data(direction: Any) -> None:
    for cmd in range(256):
        raw = frame_bytes(0x01, cmd)
        assert feed(raw, None, R2000Framer(direction)) == [Command(0x01, cmd)]


@given(st.lists(st.tuples(garbage, good_frames), min_size=1, max_size=12), garbage,
       st.lists(st.integers(1, 256), min_size=1, max_size=30))
def test_good_frames_in_garbage_all_come_out_in_order(pairs: list[tuple[bytes, Any]],
                                                      tail: bytes, sizes: list[int]) -> None:
    data = b"".join(g + f.raw for g, f in pairs) + tail
    items = feed(data, sizes)
    assert stream_bytes(items) == data
    # Each good frame comes out at its own offset (garbage may form frames of its own).
    out: list[tuple[int, Any]] = []
    offset = 0
    for item in items:
        if not isinstance(item, Rejected):
            out.append((offset, item))
        offset += len(item.data if isinstance(item, Rejected) else item.raw)
    expected = []
    offset = 0
    for g, f in pairs:
        offset += len(g)
        expected.append((offset, f))
        offset += len(f.raw)
    assert [x for x in out if x in expected] == expected


@given(st.lists(good_frames, min_size=1, max_size=10),
       st.lists(st.integers(1, 256), min_size=1, max_size=30))
def test_frame_streams_decode_alike_in_any_chunking(frames: list[Any], sizes: list[int]) -> None:
    data = b"".join(f.raw for f in frames)
    assert feed(data, sizes) == frames


def test_memory_stays_bounded_on_endless_noise() -> None:
    dec = StreamDecoder(R2000Framer())
    rng = random.Random(3)
    for _ in range(300):
        dec.feed(rng.randbytes(97))
        assert dec.pending <= R2000Framer.max_frame_len
