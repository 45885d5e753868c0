"""The exception root of pak: every error pak raises on purpose derives from PakError."""

from __future__ import annotations

__all__ = ["ConfigError", "PakError", "WireError"]


class PakError(Exception):
    """Root of every exception pak raises deliberately."""


class ConfigError(PakError):
    """A setting is missing or has a value pak refuses; the message names the setting."""


class WireError(PakError):
    """A payload does not follow the wire contract; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
