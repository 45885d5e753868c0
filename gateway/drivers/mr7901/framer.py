"""Finds MR7901 packets in a byte stream (see :class:`gateway.drivers.base.Framer`).

A packet starts with ``55 AA``; its 16-bit length field says where it ends; its CRC says whether
it is whole. The framer trusts nothing before the CRC has matched: on an implausible length or a
bad CRC it drops only the bytes up to the next ``55 AA`` candidate after the current one, so a
corrupted length never swallows the good packets behind it. A flag whose length is plausible but
not yet complete is given up as soon as a whole packet with a good CRC is buffered after a later
flag: a false flag in noise does not hold back the packets behind it (the station sends one
message and waits for the answer, so the bytes that would complete the false one may never come).

Rejection reasons: ``garbage`` (bytes before a start flag), ``bad_length`` (a length field
outside MIN_LENGTH..MAX_LENGTH), ``bad_checksum``, ``truncated`` (end of input mid-packet).
Bad tag check bytes inside a packet are not the framer's business: the packet is intact, and the
driver reports them (:meth:`~gateway.drivers.mr7901.protocol.MR7901Driver.rejections`).
"""

from __future__ import annotations

from typing import ClassVar

from gateway.drivers.base import DecodeItem, Framer, Rejected
from gateway.drivers.mr7901.checksums import crc16_ccitt_false
from gateway.drivers.mr7901.frames import CRC_LEN, MAX_LENGTH, MIN_LENGTH, SOF, message_from_packet

__all__ = ["MR7901Framer"]

_FIRST = SOF[0]
_SMALLEST = 2 + MIN_LENGTH + CRC_LEN


class MR7901Framer(Framer):
    """Stateless: every call looks at ``buf[pos:]`` afresh."""

    max_frame_len: ClassVar[int] = 2 + MAX_LENGTH + CRC_LEN

    def decode(self, buf: bytes, pos: int = 0) -> tuple[int, DecodeItem | None]:
        end = len(buf)
        if end - pos < 2:
            # Zero or one byte: a lone 0x55 may be the start of a packet.
            if end - pos == 1 and buf[pos] != _FIRST:
                return 1, Rejected("garbage", buf[pos:end])
            return 0, None
        if buf[pos] != _FIRST or buf[pos + 1] != SOF[1]:
            return self._skip(buf, pos, "garbage")
        if end - pos < 4:
            return 0, None
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            return self._skip(buf, pos, "bad_length")
        total = 2 + length + CRC_LEN
        if end - pos < total:
            # Incomplete. If a whole valid packet already sits after a later flag, this flag was
            # noise with a plausible length: give it up now rather than hold that packet back
            # until the claimed length has arrived (a station waits for each answer, so those
            # bytes might never come).
            nxt = self._next_valid(buf, pos + 1, end)
            if nxt < 0:
                return 0, None
            return nxt - pos, Rejected("bad_length", bytes(buf[pos:nxt]))
        if not self._crc_ok(buf, pos, length):
            return self._skip(buf, pos, "bad_checksum")
        packet = bytes(buf[pos:pos + total])
        return total, message_from_packet(packet)

    @staticmethod
    def _crc_ok(buf: bytes, pos: int, length: int) -> bool:
        stop = pos + 2 + length
        return crc16_ccitt_false(buf[pos + 2:stop]) == (buf[stop] << 8) | buf[stop + 1]

    @classmethod
    def _next_valid(cls, buf: bytes, start: int, end: int) -> int:
        """Offset of the first whole packet with a good CRC at a flag in ``buf[start:end]``,
        or -1."""
        j = buf.find(SOF, start)
        while 0 <= j <= end - _SMALLEST:
            length = (buf[j + 2] << 8) | buf[j + 3]
            if MIN_LENGTH <= length <= MAX_LENGTH and end - j >= 2 + length + CRC_LEN \
                    and cls._crc_ok(buf, j, length):
                return j
            j = buf.find(SOF, j + 1)
        return -1

    @staticmethod
    def _skip(buf: bytes, pos: int, reason: str) -> tuple[int, Rejected]:
        """Drop ``buf[pos:]`` up to the next start-flag candidate after ``pos``; with none in
        sight, drop everything except a final 0x55 (the first half of a flag to come)."""
        nxt = buf.find(SOF, pos + 1)
        if nxt < 0:
            # Callers hold at least 2 bytes at pos, so this still drops at least one.
            nxt = len(buf) - 1 if buf[-1] == _FIRST else len(buf)
        return nxt - pos, Rejected(reason, bytes(buf[pos:nxt]))
