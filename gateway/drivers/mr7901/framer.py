"""Finds MR7901 packets in a byte stream (see :class:`gateway.drivers.base.Framer`).

A packet starts with ``55 AA``; its 16-bit length field says where it ends; its CRC says whether
it is whole. The framer trusts nothing before the CRC has matched: on an implausible length or a
bad CRC it drops only the bytes up to the next ``55 AA`` candidate after the current one, so a
corrupted length never swallows the good packets behind it.

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
            return 0, None
        stop = pos + 2 + length
        if crc16_ccitt_false(buf[pos + 2:stop]) != (buf[stop] << 8) | buf[stop + 1]:
            return self._skip(buf, pos, "bad_checksum")
        packet = bytes(buf[pos:pos + total])
        return total, message_from_packet(packet)

    @staticmethod
    def _skip(buf: bytes, pos: int, reason: str) -> tuple[int, Rejected]:
        """Drop ``buf[pos:]`` up to the next start-flag candidate after ``pos``; with none in
        sight, drop everything except a final 0x55 (the first half of a flag to come)."""
        nxt = buf.find(SOF, pos + 1)
        if nxt < 0:
            # Callers hold at least 2 bytes at pos, so this still drops at least one.
            nxt = len(buf) - 1 if buf[-1] == _FIRST else len(buf)
        return nxt - pos, Rejected(reason, bytes(buf[pos:nxt]))
