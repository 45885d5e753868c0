"""A simulated Chafon UHFReader288 / UHFReader18: the device side of the ``chafon`` driver.

Like the real reader it speaks only when asked. An inventory command (0x01) starts a round;
the runner then calls :meth:`ChafonDevice.read_frames` with the tags heard, which renders the
round: as many frames with status 0x03 ("more follow") as the tags need, then one with status
0x01 ("done"), after which the reader is idle until the next inventory. "Get reader
information" (0x21) is answered at once. Commands for another address, and commands this
simulation does not implement, get no answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from firmware_sim.devices.base import SimDevice, SimTag
from gateway.drivers.base import StreamDecoder
from gateway.drivers.chafon.framer import ChafonFramer
from gateway.drivers.chafon.frames import (
    CMD_INVENTORY,
    CMD_READER_INFO,
    MAX_LEN,
    MODEL_18,
    MODELS,
    STATUS_DONE,
    STATUS_MORE,
    Command,
    InventoryReply,
    InventoryTag,
    ReaderInfoReply,
)

__all__ = ["DEVICE", "ChafonDevice"]

#: Reader-info data the simulation reports. Made-up values of the documented shape, not any
#: real unit's: version 3.1, type, Tr_Type, max/min frequency index, power 30 dBm, scan time 1 s
#: (10 x 100 ms); the UHFReader288 adds antenna, beeper, output and antenna-check bytes.
READER_INFO_18 = bytes((0x03, 0x01, 0x09, 0x02, 0x31, 0x80, 0x1E, 0x0A))
READER_INFO_288 = READER_INFO_18 + bytes((0x01, 0x00, 0x00, 0x00))


class ChafonDevice(SimDevice):
    """``address``: the reader's own address (replies carry it; it obeys commands sent to it
    or to 0xFF)."""

    driver = "chafon"
    models: ClassVar[tuple[str, ...]] = MODELS

    def __init__(self, model: str | None = None, rng: random.Random | None = None,
                 address: int = 0x00) -> None:
        super().__init__(model, rng)
        if self.model not in MODELS:
            raise ValueError(f"unknown Chafon model {self.model!r}")
        self.address = address
        self._running = False
        # Host commands are parsed with the driver's own framer, in the command direction.
        self._decoder = StreamDecoder(ChafonFramer(self.model, address, "command"))

    @property
    def inventory_running(self) -> bool:
        return self._running

    def on_host_bytes(self, data: bytes, now: datetime) -> bytes:
        out = []
        for item in self._decoder.feed(data):
            if not isinstance(item, Command):
                continue  # noise on the line: a real reader ignores it too
            if item.cmd == CMD_INVENTORY:
                self._running = True
            elif item.cmd == CMD_READER_INFO:
                info = READER_INFO_18 if self.model == MODEL_18 else READER_INFO_288
                out.append(ReaderInfoReply(self.address, info).raw)
        return b"".join(out)

    def read_frames(self, tags: list[SimTag], now: datetime) -> bytes:
        """One whole inventory round for ``tags`` (an empty one when none are heard); ends
        the round, so the next one needs a new inventory command."""
        self._running = False
        frames = list(self._round(tags))
        return b"".join(f.raw for f in frames)

    def round_frames(self, tags: list[SimTag]) -> list[InventoryReply]:
        """The frames of one round, as objects (for tests and for the runner's fault flags)."""
        return list(self._round(tags))

    def _round(self, tags: list[SimTag]) -> Iterator[InventoryReply]:
        groups = self._frame_groups(tags)
        for i, (mask, entries) in enumerate(groups):
            status = STATUS_DONE if i == len(groups) - 1 else STATUS_MORE
            yield InventoryReply(self.address, status, tuple(entries), mask)

    def _frame_groups(self, tags: list[SimTag]) -> list[tuple[int | None, list[InventoryTag]]]:
        """Tags packed into frames of at most 97 bytes; on the UHFReader288 one antenna per
        frame (the Ant byte names one)."""
        is_288 = self.model != MODEL_18
        by_antenna: dict[int | None, list[InventoryTag]] = {}
        for tag in tags:
            epc = bytes.fromhex(tag.tag_id)
            if is_288:
                # The raw RSSI byte has no documented dBm relation: a plausible raw value.
                entry = InventoryTag(epc, self.rng.randint(0x40, 0x70))
                key: int | None = 1 << (min(max(tag.antenna, 1), 4) - 1)
            else:
                entry = InventoryTag(epc, None)
                key = None
            by_antenna.setdefault(key, []).append(entry)
        fixed = 5 + (2 if is_288 else 1)  # Len counts Adr, reCmd, Status, CRC(2), [Ant], Num
        groups: list[tuple[int | None, list[InventoryTag]]] = []
        for key, entries in by_antenna.items():
            current: list[InventoryTag] = []
            size = fixed
            for entry in entries:
                need = 1 + len(entry.epc) + (1 if is_288 else 0)
                if current and size + need > MAX_LEN:
                    groups.append((key, current))
                    current, size = [], fixed
                current.append(entry)
                size += need
            groups.append((key, current))
        if not groups:
            groups.append((1 if is_288 else None, []))  # nothing heard: an empty final frame
        return groups

    def random_tag_id(self) -> str:
        return f"E2{self.rng.getrandbits(88):022X}"


DEVICE = ChafonDevice
