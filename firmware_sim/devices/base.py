"""The contract of a simulated reader device (the device side of one driver).

A device is pure like a driver: it turns the host's command bytes into reply bytes and
renders tag reads as the frames the real reader would send. The runners in
``firmware_sim/`` own the I/O (pty, TCP), the clock, rates and the fault flags.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class SimTag:
    """A tag the simulator makes the reader hear.

    ``tag_id`` is upper-case hex in the driver's own form (EPC for UHF readers, 8 hex digits for
    MR7901 active tags, 10 for EM4100). ``antenna`` is 1-based. Optional fields are filled
    with plausible values by the device when None.
    """

    tag_id: str
    antenna: int = 1
    rssi_dbm: int | None = None
    tag_type: int | None = None
    low_battery: bool = False
    key: bool = False
    in_range: bool = True


class SimDevice(ABC):
    """The device side of one reader protocol."""

    driver: ClassVar[str]
    models: ClassVar[tuple[str, ...]] = ("default",)

    def __init__(self, model: str | None = None, rng: random.Random | None = None) -> None:
        self.model = model or self.models[0]
        self.rng = rng or random.Random()

    @abstractmethod
    def on_host_bytes(self, data: bytes, now: datetime) -> bytes:
        """Feed bytes the host (gateway) sent; return the device's replies (possibly b"").
        Keeps its own framer state, so commands may arrive in any chunking."""

    @abstractmethod
    def read_frames(self, tags: list[SimTag], now: datetime) -> bytes:
        """The bytes the device sends when it hears ``tags`` (one report or inventory round;
        for an inventory-driven reader, the caller only emits while inventory is running)."""

    @property
    def inventory_running(self) -> bool:
        """Whether the host has started reads (readers that only report when asked).
        Readers that report on their own return True."""
        return True

    def random_tag_id(self) -> str:
        """A random tag id in this driver's form."""
        return f"{self.rng.getrandbits(96):024X}"
