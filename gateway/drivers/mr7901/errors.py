"""Exceptions of the MR7901 driver. Decoding a byte stream never raises (the framer reports
bad bytes as rejections); these are for callers that build or check single packets."""

from __future__ import annotations

from pak.errors import PakError

__all__ = ["DecodeError", "EncodeError", "MR7901Error"]


class MR7901Error(PakError):
    """Root of the MR7901 driver's errors."""


class EncodeError(MR7901Error, ValueError):
    """A value does not fit its wire field (a device id over 16 bytes, a year before 2000...)."""


class DecodeError(MR7901Error, ValueError):
    """Bytes handed to :func:`~gateway.drivers.mr7901.frames.decode_packet` are not one valid
    packet; ``reason`` is the framer's rejection code (``bad_checksum``, ``bad_length``...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
