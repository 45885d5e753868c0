"""EM4100 125 kHz ASCII readers (README section 4): STX, 10 hex digits of tag id, 2 of XOR
checksum, optional CR LF, ETX."""

from __future__ import annotations

from gateway.drivers.em4100.framer import EM4100Framer
from gateway.drivers.em4100.frames import EM4100Frame, xor_checksum
from gateway.drivers.em4100.protocol import EM4100Driver

__all__ = ["EM4100Driver", "EM4100Frame", "EM4100Framer", "xor_checksum"]
