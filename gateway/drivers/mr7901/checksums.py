"""The two checks of the MR7901 protocol (manual chapter 10).

* CRC-16/CCITT-FALSE over a packet's header and content: polynomial 0x1021, initial value
  0xFFFF, no reflection, no final XOR; sent high byte first. ``binascii.crc_hqx`` is exactly this
  CRC when seeded with 0xFFFF, and runs in C (the driver checks every packet).
* The tag check byte: the two's complement of the 8-bit sum of the tag type and the 4 id bytes,
  so type + id + check sums to 0 mod 256 (manual: ``20 E3 AF 22 32`` -> ``FA``).
"""

from __future__ import annotations

from binascii import crc_hqx

__all__ = ["crc16_ccitt_false", "tag_check_byte"]


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of ``b"123456789"``: 0x29B1)."""
    return crc_hqx(data, 0xFFFF)


def tag_check_byte(type_and_id: bytes) -> int:
    """The check byte of a tag: ``-(sum of the bytes) mod 256``."""
    return -sum(type_and_id) & 0xFF
