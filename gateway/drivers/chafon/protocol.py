"""The Chafon UHFReader288 / UHFReader18 driver: commands, replies owed, frame -> TagRead.

The reader answers commands only: the gateway sends an inventory (Cmd 0x01), the reader answers
after its scan time with one or more frames (status 0x03 while more follow), and the gateway
sends the next inventory once the round's final frame is in. "Get reader information"
(Cmd 0x21) is the watchdog ping.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from gateway.drivers.base import Driver, Frame
from gateway.drivers.chafon.framer import ChafonFramer
from gateway.drivers.chafon.frames import (
    BROADCAST,
    CMD_INVENTORY,
    CMD_READER_INFO,
    MODEL_18,
    MODELS,
    READER_INFO_FIELDS,
    STATUS_MORE,
    STATUS_TEXT,
    Command,
    InventoryReply,
    ReaderInfoReply,
    Reply,
)
from pak.types import TagRead

__all__ = ["ANTENNA_OF_MASK", "DRIVER", "ChafonDriver"]

#: The UHFReader288's Ant byte has one bit per antenna (1/2/4/8): the antenna number (1-based)
#: when exactly one bit is set, None otherwise (0 or several bits say nothing certain).
ANTENNA_OF_MASK: tuple[int | None, ...] = tuple(
    m.bit_length() if m and not m & (m - 1) else None for m in range(256)
)

#: The inventory's parameters on the UHFReader288, which its manual lists as required:
#: QValue 4 (2^Q about the number of tags in the field; bits 5-7 clear: no FastID, no
#: statistics frame) and Session S0 (tags answer every round: a parked vehicle stays visible).
#: The optional mask, TID and antenna fields are left out, so the reader uses its own settings.
INVENTORY_288_PARAMS = bytes((0x04, 0x00))
#: Statistics frame status some firmwares send after a round when QValue bit 7 asks for it;
#: it follows the final frame, so it does not end the round a second time.
STATUS_STATISTICS = 0x26
#: Largest EPC a sighting carries (the wire contract's tag_id is at most 64 hex digits).
MAX_EPC_BYTES = 32


class ChafonDriver(Driver):
    """UHFReader288 (default) and UHFReader18, chosen by ``model`` since their inventory
    replies look alike. ``address``: the reader address (0xFF, the default, sends broadcast
    commands and accepts replies from any address; a reader's own address tightens resync)."""

    name = "chafon"
    models: ClassVar[tuple[str, ...]] = MODELS
    default_baud = 57600
    default_exit_after = 3.0

    def __init__(self, model: str | None = None, *, address: int = BROADCAST) -> None:
        super().__init__(model)
        if not 0 <= address <= 0xFF:
            raise ValueError(f"driver chafon: address {address} is not 0-255")
        self.address = address
        params = b"" if self.model == MODEL_18 else INVENTORY_288_PARAMS
        self._inventory = Command(address, CMD_INVENTORY, params).raw
        self._reader_info = Command(address, CMD_READER_INFO).raw

    def framer(self) -> ChafonFramer:
        return ChafonFramer(self.model, self.address, "reply",
                            echoes=(self._inventory, self._reader_info))

    # -- commands ------------------------------------------------------------------------

    def inventory_command(self) -> bytes:
        """One inventory round (UHFReader18, broadcast: ``04 FF 01 1B B4``)."""
        return self._inventory

    def start_commands(self) -> list[bytes]:
        return [self._inventory]

    def ping_command(self) -> bytes:
        return self._reader_info

    def is_ping_reply(self, frame: Frame) -> bool:
        return isinstance(frame, ReaderInfoReply) or (
            isinstance(frame, Reply) and frame.cmd == CMD_READER_INFO)

    def replies(self, frame: Frame, now: datetime) -> list[bytes]:
        """The next inventory once a round's final frame is in (any status but 0x03, and not
        the statistics frame that may follow the final one)."""
        if isinstance(frame, InventoryReply):
            return [] if frame.status == STATUS_MORE else [self._inventory]
        if isinstance(frame, Reply) and frame.cmd == CMD_INVENTORY and frame.status not in (
                STATUS_MORE, STATUS_STATISTICS):
            return [self._inventory]
        return []

    def is_echo(self, frame: Frame) -> bool:
        """A reader never sends a command frame: one seen here is an echo on the bus."""
        return isinstance(frame, Command)

    # -- reads ---------------------------------------------------------------------------

    def reads(self, frame: Frame) -> list[TagRead]:
        if not isinstance(frame, InventoryReply):
            return []
        raw = frame.raw
        mask = frame.antenna_mask
        antenna = None if mask is None else ANTENNA_OF_MASK[mask]
        # The RSSI byte has no dBm conversion in any manual at hand: kept raw only.
        return [
            TagRead("chafon", epc.hex().upper(), "epc", raw, antenna=antenna, rssi_raw=rssi)
            for epc, rssi in frame.tags
            # An empty EPC names no vehicle; one over 32 bytes does not fit the wire contract.
            if 0 < len(epc) <= MAX_EPC_BYTES
        ]

    def frame_json(self, frame: Frame) -> dict[str, object]:
        out: dict[str, object] = {"frame": frame.kind}
        if isinstance(frame, InventoryReply):
            out.update(status=frame.status, status_text=STATUS_TEXT.get(frame.status),
                       final=frame.final, tags=len(frame.tags), address=frame.address)
            if frame.antenna_mask is not None:
                out["antenna_mask"] = frame.antenna_mask
        elif isinstance(frame, ReaderInfoReply):
            version = frame.version
            out["address"] = frame.address
            out["version"] = f"{version[0]}.{version[1]}" if version else None
            out.update({name: frame.info_field(name) for name in READER_INFO_FIELDS})
            out["extra"] = frame.extra.hex().upper()
        elif isinstance(frame, Reply):
            out.update(address=frame.address, cmd=frame.cmd, status=frame.status,
                       status_text=STATUS_TEXT.get(frame.status), data=frame.data.hex().upper())
        elif isinstance(frame, Command):
            out.update(address=frame.address, cmd=frame.cmd, data=frame.data.hex().upper(),
                       echo=True)
        out["raw"] = frame.raw.hex().upper()
        return out


DRIVER = ChafonDriver
