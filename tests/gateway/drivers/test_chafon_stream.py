"""The Chafon framer on streams: whole, byte by byte, in random chunks, after stray bytes, with
bad CRCs, in garbage; arbitrary bytes never raise and never lose or invent bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers.base import Rejected, StreamDecoder
from gateway.drivers.chafon.framer import ChafonFramer
from gateway.drivers.chafon.frames import Command, InventoryReply, InventoryTag, ReaderInfoReply
from tests.gateway.drivers.streams import feed_in_pieces, frames_of, stream_bytes

EPC = bytes.fromhex("E200301666130121155074EF")
AnyFrame = InventoryReply | ReaderInfoReply | Command
# One of each kind the gateway side meets (288 layout).
SAMPLES: list[InventoryReply | ReaderInfoReply | Command] = [
    InventoryReply(0x00, 0x03, (InventoryTag(EPC, 0x5A), InventoryTag(b"\x30\x00", 0x41)), 0x02),
    InventoryReply(0x00, 0x01, (), 0x01),
    ReaderInfoReply(0x00, bytes.fromhex("0301090231801E0A01000000")),
    Command(0xFF, 0x01),
]


def decode_all(data: bytes, sizes: list[int] | None = None, **framer_args: object) -> list:
    dec = StreamDecoder(ChafonFramer(**framer_args))  # type: ignore[arg-type]
    return feed_in_pieces(dec, data, sizes) + dec.flush()


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
@pytest.mark.parametrize("chunking", ["whole", "bytewise", "random"])
def test_each_frame_in_any_chunking(frame: AnyFrame, chunking: str) -> None:
    data = frame.raw * 3
    sizes = {"whole": None, "bytewise": [1], "random": [3, 1, 7, 2, 11]}[chunking]
    items = decode_all(data, sizes)
    assert items == [frame] * 3


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
@pytest.mark.parametrize("stray", [b"\x02", b"\x55\xaa", b"\xa0", b"\x10", b"\x20\x00\x01"])
def test_frame_after_stray_bytes(frame: AnyFrame, stray: bytes) -> None:
    # The stray bytes end up rejected, the frame intact, byte by byte too.
    for sizes in (None, [1]):
        items = decode_all(stray + frame.raw, sizes)
        assert frames_of(items) == [frame]
        assert stream_bytes(items) == stray + frame.raw


def test_a_stray_candidate_does_not_stall_the_final_frame() -> None:
    # 0x50 0x00 0x01 looks like the start of an 81-byte frame; the reader's final frame behind it
    # is complete, and the reader now waits for our next command: it must come out now.
    final = InventoryReply(0x00, 0x01, (InventoryTag(EPC, 0x50),), 0x01).raw
    dec = StreamDecoder(ChafonFramer())
    items = dec.feed(b"\x50\x00" + final)
    assert frames_of(items) == [InventoryReply(0x00, 0x01, (InventoryTag(EPC, 0x50),), 0x01)]
    assert dec.pending == 0


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: f.kind)
def test_bad_crc_costs_only_that_frame(frame: AnyFrame) -> None:
    bad = bytearray(frame.raw)
    bad[-1] ^= 0x01
    for sizes in (None, [1], [5, 2]):
        items = decode_all(frame.raw + bytes(bad) + frame.raw, sizes)
        assert frames_of(items) == [frame, frame]
        reasons = {x.reason for x in items if isinstance(x, Rejected)}
        assert "bad_checksum" in reasons


def test_corrupted_len_does_not_swallow_the_next_frame() -> None:
    good = SAMPLES[0].raw
    bad = bytearray(good)
    bad[0] = 0x60  # Len now claims 97 bytes, more than the two frames together
    items = decode_all(bytes(bad) + good)
    assert frames_of(items) == [SAMPLES[0]]


def test_frames_for_another_address_are_garbage() -> None:
    other = InventoryReply(0x07, 0x01, (InventoryTag(EPC, 1),), 0x01)
    mine = InventoryReply(0x05, 0x01, (InventoryTag(EPC, 1),), 0x01)
    items = decode_all(other.raw + mine.raw, address=0x05)
    assert frames_of(items) == [mine]
    # The broadcast setting takes both.
    assert frames_of(decode_all(other.raw + mine.raw)) == [other, mine]


def test_echoed_command_with_data_is_a_command() -> None:
    # The 288 inventory "06 FF 01 04 00 .." would parse as a reply with status 04; known echoes
    # are recognised by their exact bytes.
    cmd = Command(0xFF, 0x01, b"\x04\x00")
    items = decode_all(cmd.raw, echoes=[cmd.raw])
    assert items == [cmd]
    assert decode_all(cmd.raw) == [Rejected("bad_layout", cmd.raw)]


def test_truncated_frame_at_end_of_input() -> None:
    raw = SAMPLES[0].raw
    items = decode_all(raw + raw[:9])
    assert items == [SAMPLES[0], Rejected("truncated", raw[:9])]


def test_counters() -> None:
    dec = StreamDecoder(ChafonFramer())
    bad = bytearray(SAMPLES[1].raw)
    bad[-2] ^= 0xFF
    dec.feed(b"\x00\xff" + SAMPLES[0].raw + bytes(bad) + SAMPLES[1].raw)
    dec.flush()
    assert dec.stats.frames["inventory"] == 2
    assert dec.stats.rejected["bad_checksum"] >= 1
    assert dec.stats.rejected_bytes == 2 + len(bad)


# -- properties -------------------------------------------------------------------------------

chunk_sizes = st.lists(st.integers(1, 256), min_size=1, max_size=20)


@given(st.binary(max_size=600), chunk_sizes, st.sampled_from(["uhfreader288", "uhfreader18"]))
def test_arbitrary_bytes_never_raise_and_chunking_does_not_matter(
        data: bytes, sizes: list[int], model: str) -> None:
    whole = decode_all(data, model=model)
    chunked = decode_all(data, sizes, model=model)
    # Every input byte comes out exactly once, as part of a frame or of a rejection.
    assert stream_bytes(whole) == data
    assert stream_bytes(chunked) == data
    assert frames_of(chunked) == frames_of(whole)


@st.composite
def mixed_streams(draw: st.DrawFn) -> tuple[list[bytes], list]:
    tags = st.lists(st.builds(InventoryTag, st.binary(min_size=1, max_size=12),
                              st.integers(0, 255)), max_size=5)
    frames = draw(st.lists(
        st.one_of(
            st.builds(InventoryReply, st.integers(0, 254), st.sampled_from([1, 2, 3, 4]),
                      tags.map(tuple), st.sampled_from([1, 2, 4, 8])),
            st.builds(ReaderInfoReply, st.integers(0, 254), st.binary(max_size=12)),
        ),
        min_size=1, max_size=8))
    parts: list[bytes] = []
    for f in frames:
        parts.append(draw(st.binary(max_size=40)))
        parts.append(f.raw)
    return parts, frames


@given(mixed_streams(), chunk_sizes)
def test_valid_frames_in_garbage_all_come_out_in_order(stream, sizes: list[int]) -> None:
    parts, frames = stream
    data = b"".join(parts)
    items = decode_all(data, sizes)
    assert stream_bytes(items) == data
    out = iter(frames_of(items))
    # The inserted frames are a subsequence of what came out (garbage may, very rarely, hold a
    # frame of its own), in order.
    for f in frames:
        assert any(g == f for g in out), f


def test_random_chunking_of_a_long_stream() -> None:
    rng = random.Random(7)
    frames = [InventoryReply(0, rng.choice([1, 3]),
                             tuple(InventoryTag(rng.randbytes(12), rng.randrange(256))
                                   for _ in range(rng.randrange(6))), 1 << rng.randrange(4))
              for _ in range(300)]
    data = b"".join(rng.randbytes(rng.randrange(8)) + f.raw for f in frames)
    sizes = [rng.randint(1, 256) for _ in range(500)]
    assert frames_of(decode_all(data, sizes)) == frames
