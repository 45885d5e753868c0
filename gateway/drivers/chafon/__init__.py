"""Chafon UHFReader288 / UHFReader18 serial protocol (README section 2): no header byte,
CRC-16/MCRF4XX, multi-frame inventory replies whose layout depends on the model."""

from __future__ import annotations

from gateway.drivers.chafon.framer import ChafonFramer
from gateway.drivers.chafon.frames import (
    Command,
    InventoryReply,
    InventoryTag,
    ReaderInfoReply,
    Reply,
)
from gateway.drivers.chafon.protocol import ChafonDriver

__all__ = ["ChafonDriver", "ChafonFramer", "Command", "InventoryReply", "InventoryTag",
           "ReaderInfoReply", "Reply"]
