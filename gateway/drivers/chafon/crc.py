"""CRC-16/MCRF4XX, the check of every Chafon frame (preset 0xFFFF, reflected polynomial 0x8408,
no final XOR; sent LSB first). Check value of ``b"123456789"``: 0x6F91.

A reflected CRC equals the bit-reversed result of the plain (MSB-first) CRC with the same
polynomial run over bit-reversed bytes. The plain CRC-16 with polynomial 0x1021 is
:func:`binascii.crc_hqx` (in C), and reversing bytes is one :meth:`bytes.translate`, so a frame's
CRC costs two C calls and two table look-ups instead of a Python loop over its bytes.
"""

from __future__ import annotations

from binascii import crc_hqx

__all__ = ["crc16_mcrf4xx", "crc16_mcrf4xx_bitwise"]

#: REVERSE[b] is b with its 8 bits in reverse order.
REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
# The preset 0xFFFF reads the same reversed, so crc_hqx is seeded with it unchanged.
_PRESET = 0xFFFF


def crc16_mcrf4xx(data: bytes) -> int:
    """CRC-16/MCRF4XX of ``data`` (an int; the wire carries it LSB first)."""
    c = crc_hqx(data.translate(REVERSE), _PRESET)
    return (REVERSE[c & 0xFF] << 8) | REVERSE[c >> 8]


def crc16_mcrf4xx_bitwise(data: bytes) -> int:
    """The textbook bit-at-a-time form: the reference the fast form is tested against."""
    crc = _PRESET
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc
