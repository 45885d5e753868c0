"""EM4100 125 kHz ASCII reader frames (RDM6300 and similar; README section 4)::

    STX | 10 ASCII hex: version byte + 4-byte card id | 2 ASCII hex: checksum | [CR LF] | ETX
    02  | 36 32 45 33 30 38 36 43 45 44              | 30 38                 | [0D 0A] | 03

14 bytes (16 with CR LF). The checksum is the XOR of the 5 data bytes. The tag id is all 10 hex
digits, version byte included, upper case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.drivers.base import EncodesRaw
from pak.errors import PakError

__all__ = ["CRLF", "ETX", "FRAME_LEN", "FRAME_LEN_CRLF", "STX", "EM4100Frame", "EM4100FrameError",
           "xor_checksum"]

STX = 0x02
ETX = 0x03
CRLF = b"\r\n"
FRAME_LEN = 14
FRAME_LEN_CRLF = 16
_HEX_DIGITS = frozenset("0123456789ABCDEF")


class EM4100FrameError(PakError):
    """A frame cannot be encoded as asked (a tag id that is not 10 hex digits)."""


def xor_checksum(data: bytes) -> int:
    """XOR of the data bytes (the 5 of a frame)."""
    x = 0
    for b in data:
        x ^= b
    return x


@dataclass(frozen=True, slots=True)
class EM4100Frame(EncodesRaw):
    """One card report. ``tag_id``: 10 upper-case hex digits; ``crlf``: whether CR LF comes
    before the ETX; ``raw``: the bytes as received (a reader sending lower-case hex differs
    from :meth:`encode` there only)."""

    tag_id: str
    crlf: bool = False
    raw: bytes = b""

    kind: ClassVar[str] = "tag"

    @property
    def data(self) -> bytes:
        """The 5 data bytes: version byte, then the 4-byte card id."""
        return bytes.fromhex(self.tag_id)

    @property
    def version(self) -> int:
        return int(self.tag_id[:2], 16)

    @property
    def card_id(self) -> int:
        return int(self.tag_id[2:], 16)

    @property
    def checksum(self) -> int:
        return xor_checksum(self.data)

    def encode(self) -> bytes:
        tag = self.tag_id
        if len(tag) != 10 or not _HEX_DIGITS.issuperset(tag):
            raise EM4100FrameError(f"tag id {tag!r} is not 10 upper-case hex digits")
        body = f"{tag}{self.checksum:02X}".encode("ascii")
        return b"\x02" + body + (CRLF if self.crlf else b"") + b"\x03"
