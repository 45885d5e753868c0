"""The MR7901 framer on byte streams: the manual's packets whole, byte by byte and in random
chunks; bad CRCs and lengths; stray 55 AA / A0 / 02 bytes; arbitrary bytes never raise, never
lose or duplicate a byte, and never lose an intact packet."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers.base import DecodeItem, Rejected, StreamDecoder
from gateway.drivers.mr7901.framer import MR7901Framer
from gateway.drivers.mr7901.frames import (
    HEADER_LEN,
    MAX_LENGTH,
    DataReport,
    Heartbeat,
    Message,
    Register,
    decode_packet,
    pack_packet,
)
from tests.gateway.drivers import mr7901_manual as manual
from tests.gateway.drivers.streams import feed_in_pieces, stream_bytes
from tests.gateway.drivers.test_mr7901_frames import messages

PACKETS = [p for _, p in manual.ALL]
STREAM = b"".join(PACKETS)


def decode_all(data: bytes, sizes: list[int] | None = None) -> list[DecodeItem]:
    """Feed ``data`` in writes of ``sizes`` (cycled; whole when None), then flush."""
    dec = StreamDecoder(MR7901Framer())
    out = feed_in_pieces(dec, data, sizes) + dec.flush()
    assert dec.pending == 0
    return out


def packets_of(items: list[DecodeItem]) -> list[bytes]:
    return [x.raw for x in items if not isinstance(x, Rejected)]


def rejected(items: list[DecodeItem]) -> list[tuple[str, bytes]]:
    return [(x.reason, x.data) for x in items if isinstance(x, Rejected)]


replay = stream_bytes


# -- the manual's packets ---------------------------------------------------------------------

def test_manual_stream_whole() -> None:
    items = decode_all(STREAM)
    assert packets_of(items) == PACKETS
    assert rejected(items) == []
    assert [x.kind for x in items][:3] == ["register", "register_reply", "login"]


def test_manual_stream_byte_by_byte() -> None:
    items = decode_all(STREAM, [1])
    assert packets_of(items) == PACKETS and rejected(items) == []


@given(st.lists(st.integers(1, 300), min_size=1, max_size=30))
def test_manual_stream_in_random_chunks(sizes: list[int]) -> None:
    items = decode_all(STREAM, sizes)
    assert packets_of(items) == PACKETS and rejected(items) == []


def test_decoded_packets_equal_single_packet_decoding() -> None:
    items = decode_all(STREAM)
    assert [x for x in items if isinstance(x, Message)] == [decode_packet(p) for p in PACKETS]


def test_framer_contract_on_a_prefix() -> None:
    framer = MR7901Framer()
    for cut in range(len(manual.REGISTER)):
        assert framer.decode(manual.REGISTER[:cut]) == (0, None)
    n, item = framer.decode(b"xx" + manual.REGISTER, 2)
    assert n == len(manual.REGISTER) and isinstance(item, Register)


# -- damage -------------------------------------------------------------------------------------

def test_bad_crc_drops_only_that_packet() -> None:
    bad = manual.LOGIN[:-1] + bytes([manual.LOGIN[-1] ^ 0x01])
    items = decode_all(manual.REGISTER + bad + manual.HEARTBEAT)
    assert packets_of(items) == [manual.REGISTER, manual.HEARTBEAT]
    assert rejected(items) == [("bad_checksum", bad)]


@pytest.mark.parametrize("sizes", [None, [1], [7, 3, 50]])
def test_corrupted_length_does_not_swallow_the_next_packets(sizes: list[int] | None) -> None:
    # The login's length field says 0x0120 (288): it would cover the next packets. Only the
    # bytes up to the next 55 AA go: on its bad CRC when the 288 bytes are in, or as soon as
    # the heartbeat behind it is whole (in small writes that comes first).
    bad = manual.LOGIN[:2] + b"\x01\x20" + manual.LOGIN[4:]
    stream = manual.REGISTER + bad + manual.HEARTBEAT + manual.DATA_REPORT + bytes(300)
    items = decode_all(stream, sizes)
    assert packets_of(items) == [manual.REGISTER, manual.HEARTBEAT, manual.DATA_REPORT]
    assert any(d == bad and r in {"bad_checksum", "bad_length"} for r, d in rejected(items))
    assert replay(items) == stream


@pytest.mark.parametrize("length", [0x0000, 0x001B, MAX_LENGTH + 1, 0xFFFF])
def test_implausible_length_is_rejected_at_once(length: int) -> None:
    bad = b"\x55\xaa" + length.to_bytes(2, "big") + b"\x00\x08"
    items = decode_all(bad + manual.REGISTER)
    assert rejected(items) == [("bad_length", bad)]
    assert packets_of(items) == [manual.REGISTER]


@pytest.mark.parametrize("stray", [b"\x55\xaa", b"\x55", b"\xaa", b"\xa0", b"\x02",
                                   b"\x55\x55\xaa", b"\xa0\x13\x01\x89", b"\x02\x36\x32\x03"])
@pytest.mark.parametrize("sizes", [None, [1], [2, 5]])
def test_stray_bytes_before_a_packet(stray: bytes, sizes: list[int] | None) -> None:
    stream = manual.REGISTER + stray + manual.DATA_REPORT + stray + manual.HEARTBEAT
    items = decode_all(stream, sizes)
    assert packets_of(items) == [manual.REGISTER, manual.DATA_REPORT, manual.HEARTBEAT]
    assert b"".join(d for _, d in rejected(items)) == stray + stray
    assert {r for r, _ in rejected(items)} <= {"garbage", "bad_length"}


def test_stray_55_aa_before_a_packet_is_a_bad_length() -> None:
    # 55 AA 55 AA ...: the first flag reads "55 AA" as its length, 0x55AA > MAX_LENGTH.
    items = decode_all(b"\x55\xaa" + manual.REGISTER)
    assert rejected(items) == [("bad_length", b"\x55\xaa")]


def test_truncated_packet_at_end_of_input() -> None:
    items = decode_all(manual.REGISTER + manual.LOGIN[:20])
    assert packets_of(items) == [manual.REGISTER]
    assert rejected(items) == [("truncated", manual.LOGIN[:20])]


def test_lone_trailing_55_is_kept_until_the_next_byte() -> None:
    dec = StreamDecoder(MR7901Framer())
    assert dec.feed(b"\x01\x02\x55") == [Rejected("garbage", b"\x01\x02")]
    assert dec.pending == 1
    items = dec.feed(manual.REGISTER[1:])  # the 55 was the start of a packet after all
    assert packets_of(items) == [manual.REGISTER]


def test_counters() -> None:
    dec = StreamDecoder(MR7901Framer())
    bad = manual.LOGIN[:-1] + b"\x00"
    dec.feed(b"\xa0\xa0" + manual.REGISTER + bad + manual.DATA_REPORT)
    assert dec.stats.frames == {"register": 1, "data_report": 1}
    assert dec.stats.rejected == {"garbage": 1, "bad_checksum": 1}
    assert dec.stats.frames_bad == 1


# -- properties -----------------------------------------------------------------------------------

chunkings = st.lists(st.integers(1, 64), min_size=1, max_size=20)


@given(st.binary(max_size=2000), chunkings)
def test_any_bytes_any_chunking_never_raise_and_lose_nothing(data: bytes,
                                                             sizes: list[int]) -> None:
    items = decode_all(data, sizes)
    assert replay(items) == data  # every byte accounted for, once, in order
    # Chunking does not change which packets are found.
    assert packets_of(items) == packets_of(decode_all(data))


# Garbage rich in the bytes that start frames of this and the other drivers' protocols.
garbage = st.lists(st.sampled_from([b"\x55", b"\xaa", b"\x55\xaa", b"\xa0", b"\x02", b"\x03",
                                    b"\x00", b"\xff"]) | st.binary(max_size=8),
                   max_size=12).map(b"".join)


@given(st.lists(st.tuples(garbage, messages), min_size=1, max_size=6), garbage, chunkings)
def test_packets_in_garbage_all_come_out_in_order(parts: list[tuple[bytes, Message]],
                                                  tail: bytes, sizes: list[int]) -> None:
    wanted = [m.encode() for _, m in parts]
    stream = b"".join(g + p for (g, _), p in zip(parts, wanted, strict=True)) + tail
    items = decode_all(stream, sizes)
    found = packets_of(items)
    it = iter(found)
    assert all(any(f == w for f in it) for w in wanted), "an intact packet was lost"
    assert replay(items) == stream


@pytest.mark.parametrize("sizes", [None, [1], [5, 11]])
def test_false_flag_with_plausible_length_does_not_hold_back_a_packet(
        sizes: list[int] | None) -> None:
    # 55 AA 00 55 claims 85 bytes; the heartbeat behind it is whole: it comes out at once,
    # without waiting for bytes that a station (waiting for its answer) would never send.
    dec = StreamDecoder(MR7901Framer())
    stream = b"\x55\xaa\x00" + manual.HEARTBEAT
    items: list[DecodeItem] = []
    for i in range(0, len(stream), (sizes or [len(stream)])[0]):
        items += dec.feed(stream[i:i + (sizes or [len(stream)])[0]])
    assert packets_of(items) == [manual.HEARTBEAT]
    assert rejected(items) == [("bad_length", b"\x55\xaa\x00")]
    assert dec.pending == 0


@given(st.lists(messages, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_random_messages_survive_random_chunking(msgs: list[Message], rnd: random.Random) -> None:
    stream = b"".join(m.encode() for m in msgs)
    sizes = [rnd.randint(1, 100) for _ in range(20)]
    items = decode_all(stream, sizes)
    assert [x for x in items if isinstance(x, Message)] == msgs
    assert rejected(items) == []


def test_largest_packet_passes_and_one_byte_more_is_refused() -> None:
    # A data report of exactly MAX_LENGTH (header + content) is accepted.
    content = bytes(MAX_LENGTH - HEADER_LEN)
    big = pack_packet(0x0004, content, device_id="x")
    items = decode_all(big)
    assert isinstance(items[0], DataReport) and len(items) == 1
    too_big = pack_packet(0x0004, content + b"\x00", device_id="x")
    items = decode_all(too_big + manual.HEARTBEAT)
    assert rejected(items)[0][0] == "bad_length"
    assert isinstance(items[-1], Heartbeat)
