"""Finding EM4100 frames in a byte stream: resync on STX (0x02), which never occurs inside a
frame (the body is ASCII hex, CR, LF and ETX).

Reasons reported: ``garbage`` (bytes before an STX), ``truncated`` (a new STX or an early ETX
before the frame is complete, or a frame prefix at the end of input), ``not_hex`` (a byte in the
12 hex positions that is not a hex digit), ``bad_terminator`` (no ETX, or CR LF ETX, after the
12 hex digits), ``bad_checksum``. After any of them the framer drops up to the next STX only, so
a damaged frame never costs the frame behind it.
"""

from __future__ import annotations

from binascii import unhexlify

from gateway.drivers.base import DecodeItem, Framer, Rejected
from gateway.drivers.em4100.frames import CRLF, ETX, FRAME_LEN, FRAME_LEN_CRLF, STX, EM4100Frame

__all__ = ["EM4100Framer"]

_STX = b"\x02"
# Bytes a hex position may hold; ``translate(None, _HEX)`` deletes them, so what is left of a
# slice is its non-hex bytes (one C call instead of a per-byte loop).
_HEX = b"0123456789ABCDEFabcdef"


class EM4100Framer(Framer):
    """Frames of one EM4100 ASCII stream, with or without CR LF (both accepted always)."""

    max_frame_len = FRAME_LEN_CRLF

    def decode(self, buf: bytes, pos: int = 0) -> tuple[int, DecodeItem | None]:
        end = len(buf)
        if pos >= end:
            return 0, None
        if buf[pos] != STX:
            nxt = buf.find(_STX, pos)
            cut = end if nxt < 0 else nxt
            return cut - pos, Rejected("garbage", buf[pos:cut])
        digits = buf[pos + 1:pos + 13]
        bad = digits.translate(None, _HEX)
        if bad:
            i = digits.index(bad[0])
            reason = "truncated" if bad[0] in (STX, ETX) else "not_hex"
            return self._drop(buf, pos, end, pos + 1 + i, reason)
        if len(digits) < 12 or end <= pos + 13:
            return 0, None  # a prefix of a frame: wait
        term = buf[pos + 13]
        if term == ETX:
            stop = pos + FRAME_LEN
        elif term == CRLF[0]:
            if end < pos + FRAME_LEN_CRLF:
                tail = buf[pos + 14:end]
                if tail and tail != CRLF[1:2]:
                    return self._drop(buf, pos, end, pos + 14, "bad_terminator")
                return 0, None
            if buf[pos + 14:pos + 16] != b"\n\x03":
                reason = "truncated" if STX in buf[pos + 14:pos + 16] else "bad_terminator"
                return self._drop(buf, pos, end, pos + 14, reason)
            stop = pos + FRAME_LEN_CRLF
        else:
            reason = "truncated" if term == STX else "bad_terminator"
            return self._drop(buf, pos, end, pos + 13, reason)
        d = unhexlify(digits)
        if d[0] ^ d[1] ^ d[2] ^ d[3] ^ d[4] != d[5]:
            return stop - pos, Rejected("bad_checksum", buf[pos:stop])
        return stop - pos, EM4100Frame(digits[:10].decode("ascii").upper(),
                                       stop - pos == FRAME_LEN_CRLF, buf[pos:stop])

    @staticmethod
    def _drop(buf: bytes, pos: int, end: int, bad_at: int,
              reason: str) -> tuple[int, DecodeItem]:
        """Reject from ``pos`` up to the next STX at or after ``bad_at`` (or all that is
        buffered: nothing before an STX can start a frame)."""
        nxt = buf.find(_STX, min(bad_at, end))
        cut = end if nxt < 0 else nxt
        return cut - pos, Rejected(reason, buf[pos:cut])
