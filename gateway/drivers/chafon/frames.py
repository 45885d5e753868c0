"""Chafon UHFReader18 / UHFReader288 frames: one frozen dataclass per kind, and the parsing of
one complete, CRC-checked frame. No buffering here (that is :mod:`.framer`).

There is no header byte. A command (host to reader) and a reply (reader to host) differ only in
the status byte a reply carries::

    command:  Len | Adr | Cmd   |          Data... | CRC-LSB | CRC-MSB     Len = len(Data) + 4
    reply:    Len | Adr | reCmd | Status | Data... | CRC-LSB | CRC-MSB     Len = len(Data) + 5

Len counts every byte after itself, so a frame is Len + 1 bytes. The CRC is CRC-16/MCRF4XX over
Len..Data (see :mod:`.crc`). Adr 0-254 names a reader, 0xFF is broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from gateway.drivers.base import EncodesRaw
from gateway.drivers.chafon.crc import crc16_mcrf4xx
from pak.errors import PakError

__all__ = [
    "BROADCAST",
    "CMD_INVENTORY",
    "CMD_READER_INFO",
    "KNOWN_COMMANDS",
    "MAX_LEN",
    "MIN_LEN",
    "MODELS",
    "STATUS_ANTENNA_ERROR",
    "STATUS_DONE",
    "STATUS_MEMORY_FULL",
    "STATUS_MORE",
    "STATUS_SCAN_TIME",
    "STATUS_TEXT",
    "ChafonFrame",
    "ChafonFrameError",
    "Command",
    "InventoryReply",
    "InventoryTag",
    "ReaderInfoReply",
    "Reply",
    "parse_command",
    "parse_reply",
    "seal",
]

MODEL_288 = "uhfreader288"
MODEL_18 = "uhfreader18"
#: The reply layouts this module knows; the first is the default.
MODELS: tuple[str, ...] = (MODEL_288, MODEL_18)

BROADCAST = 0xFF
#: Plausible Len bytes (README section 2): a bare command is 4, a frame at most 97 bytes.
MIN_LEN = 4
MAX_LEN = 96

CMD_INVENTORY = 0x01
CMD_READER_INFO = 0x21

#: Command codes the reader family is known to use. Anything else in the Cmd/reCmd position
#: means the bytes are not a frame start (there is no header byte to resync on, so this set is
#: one of the plausibility rules). EPC C1G2 tag commands 0x01-0x1F, reader settings 0x21-0x3F,
#: ISO 18000-6B commands 0x50-0x57, the later firmwares' extensions 0x70-0x7F, and 0xEE, the
#: report of the "real-time" (active) work mode. Frames with these codes that this driver does
#: not decode further are kept as :class:`Reply` (raw events).
KNOWN_COMMANDS: frozenset[int] = frozenset(
    [*range(0x01, 0x20), *range(0x21, 0x40), *range(0x50, 0x58), *range(0x70, 0x80), 0xEE]
)

STATUS_DONE = 0x01  # round finished, every tag heard has been reported
STATUS_SCAN_TIME = 0x02  # scan time expired before the round finished
STATUS_MORE = 0x03  # more frames of this round follow
STATUS_MEMORY_FULL = 0x04  # the reader's memory filled up; reports what it has
STATUS_ANTENNA_ERROR = 0xF8  # antenna error (disconnected antenna)
#: Inventory statuses whose data is the tag list.
TAG_STATUSES = frozenset([STATUS_DONE, STATUS_SCAN_TIME, STATUS_MORE, STATUS_MEMORY_FULL,
                          STATUS_ANTENNA_ERROR])
STATUS_TEXT: dict[int, str] = {
    0x00: "ok",
    STATUS_DONE: "done",
    STATUS_SCAN_TIME: "scan_time_expired",
    STATUS_MORE: "more_follow",
    STATUS_MEMORY_FULL: "memory_full",
    STATUS_ANTENNA_ERROR: "antenna_error",
}


class ChafonFrameError(PakError):
    """A frame cannot be encoded as asked (a field out of range, a frame over 97 bytes)."""


def seal(body: bytes) -> bytes:
    """``Len..Data`` plus its CRC, LSB first: the frame as sent."""
    crc = crc16_mcrf4xx(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ChafonFrameError(f"{name} {value} is not a byte")


def _frame(address: int, cmd: int, payload: bytes) -> bytes:
    """Len | Adr | Cmd | payload | CRC; ``payload`` holds the status byte of a reply."""
    _check_byte("address", address)
    _check_byte("command", cmd)
    length = len(payload) + 4
    if length > MAX_LEN:
        raise ChafonFrameError(f"frame of {length + 1} bytes is over the {MAX_LEN + 1} allowed")
    return seal(bytes((length, address, cmd)) + payload)


@dataclass(frozen=True, slots=True)
class Command(EncodesRaw):
    """Host to reader::

        Len | Adr | Cmd | Data... | CRC-LSB | CRC-MSB        Len = len(Data) + 4

    Seen on the gateway side only as an echo (RS-485 adapters hear what they send).
    """

    address: int
    cmd: int
    data: bytes = b""
    raw: bytes = b""

    kind: ClassVar[str] = "command"

    def encode(self) -> bytes:
        return _frame(self.address, self.cmd, self.data)


@dataclass(frozen=True, slots=True)
class Reply(EncodesRaw):
    """A reply this driver keeps raw (a known reCmd it does not decode, or an error status)::

        Len | Adr | reCmd | Status | Data... | CRC-LSB | CRC-MSB     Len = len(Data) + 5
    """

    address: int
    cmd: int
    status: int
    data: bytes = b""
    raw: bytes = b""

    kind: ClassVar[str] = "reply"

    def encode(self) -> bytes:
        _check_byte("status", self.status)
        return _frame(self.address, self.cmd, bytes((self.status,)) + self.data)


class InventoryTag(NamedTuple):
    """One tag of an inventory reply: its EPC and, on the UHFReader288, the raw RSSI byte."""

    epc: bytes
    rssi: int | None = None


@dataclass(frozen=True, slots=True)
class InventoryReply(EncodesRaw):
    """The reply to an inventory (reCmd 0x01), one frame of a round. Two layouts, which the
    bytes cannot tell apart (the 288's antenna byte sits where the 18's count does), so the
    model is a setting::

        UHFReader18:   Len | Adr | 01 | Status | Num | {EPCLen, EPC} x Num         | CRC(2)
        UHFReader288:  Len | Adr | 01 | Status | Ant | Num | {EPCLen, EPC, RSSI} x Num | CRC(2)

    ``antenna_mask`` is None for the UHFReader18 layout, else the Ant byte (bit 0 = antenna 1,
    ... bit 3 = antenna 4). Status 0x03 means more frames of this round follow; any other status
    ends the round (0x01 done, 0x02 scan time expired, 0x04 memory full, 0xF8 antenna error).
    """

    address: int
    status: int
    tags: tuple[InventoryTag, ...] = ()
    antenna_mask: int | None = None
    raw: bytes = b""

    kind: ClassVar[str] = "inventory"

    @property
    def model(self) -> str:
        return MODEL_18 if self.antenna_mask is None else MODEL_288

    @property
    def final(self) -> bool:
        """Whether this frame ends its inventory round."""
        return self.status != STATUS_MORE

    def encode(self) -> bytes:
        _check_byte("status", self.status)
        parts = [bytes((self.status,))]
        if self.antenna_mask is not None:
            _check_byte("antenna mask", self.antenna_mask)
            parts.append(bytes((self.antenna_mask,)))
        parts.append(bytes((len(self.tags),)))
        for epc, rssi in self.tags:
            if len(epc) > 0xFF:
                raise ChafonFrameError(f"EPC of {len(epc)} bytes")
            parts.append(bytes((len(epc),)))
            parts.append(epc)
            if self.antenna_mask is not None:
                if rssi is None:
                    raise ChafonFrameError("the UHFReader288 layout carries an RSSI per tag")
                _check_byte("rssi", rssi)
                parts.append(bytes((rssi,)))
            elif rssi is not None:
                raise ChafonFrameError("the UHFReader18 layout carries no RSSI")
        return _frame(self.address, CMD_INVENTORY, b"".join(parts))


#: Field names of the reader-info data, in wire order (one byte each after the 2-byte version).
#: The README names no fields; this is the layout the vendor's SDK declares for
#: GetReaderInformation (UHFReader18: the first 8 bytes; UHFReader288 adds 4 more).
READER_INFO_FIELDS = ("reader_type", "tr_type", "dmaxfre", "dminfre", "power", "scan_time")


@dataclass(frozen=True, slots=True)
class ReaderInfoReply(EncodesRaw):
    """Reply to "get reader information" (reCmd 0x21, status 0x00)::

        Len | Adr | 21 | 00 | Version(2: major, minor) | Type | Tr_Type | dmaxfre | dminfre
            | Power | Scntm | [Ant | BeepEn | OutputRep | CheckAnt: UHFReader288] | CRC(2)

    ``data`` is kept whole; the named properties read it and are None where it is too short.
    Bytes past the known ones are :attr:`extra` (the 288's antenna and beeper settings among
    them; firmwares differ here, so they are not named).
    """

    address: int
    data: bytes = b""
    status: int = 0x00
    raw: bytes = b""

    kind: ClassVar[str] = "reader_info"

    def encode(self) -> bytes:
        _check_byte("status", self.status)
        return _frame(self.address, CMD_READER_INFO, bytes((self.status,)) + self.data)

    @property
    def version(self) -> tuple[int, int] | None:
        d = self.data
        return (d[0], d[1]) if len(d) >= 2 else None

    def info_field(self, name: str) -> int | None:
        """One of :data:`READER_INFO_FIELDS`, or None when the data is too short."""
        i = 2 + READER_INFO_FIELDS.index(name)
        return self.data[i] if len(self.data) > i else None

    @property
    def reader_type(self) -> int | None:
        return self.info_field("reader_type")

    @property
    def extra(self) -> bytes:
        return self.data[2 + len(READER_INFO_FIELDS):]


ChafonFrame = Command | Reply | InventoryReply | ReaderInfoReply


def parse_command(frame: bytes) -> Command:
    """A complete, CRC-checked frame read as a command."""
    return Command(frame[1], frame[2], frame[3:-2], frame)


def parse_reply(frame: bytes, model: str) -> ChafonFrame | None:
    """A complete, CRC-checked frame of at least 6 bytes read as a reply; None when its data do
    not fit the layout its reCmd and status promise (the caller rejects it as ``bad_layout``)."""
    cmd = frame[2]
    status = frame[3]
    if cmd == CMD_INVENTORY and status in TAG_STATUSES:
        parsed = _parse_inventory(frame, model)
        if parsed is not None or status != STATUS_ANTENNA_ERROR:
            return parsed
        # An antenna error need not carry a tag list: keep it raw.
    elif cmd == CMD_READER_INFO and status == 0x00:
        return ReaderInfoReply(frame[1], frame[4:-2], status, frame)
    return Reply(frame[1], cmd, status, frame[4:-2], frame)


def _parse_inventory(frame: bytes, model: str) -> InventoryReply | None:
    end = len(frame) - 2  # the CRC
    if model == MODEL_288:
        if end < 6:
            return None
        mask: int | None = frame[4]
        count = frame[5]
        i = 6
        trailer = 1  # the RSSI byte after each EPC
    else:
        if end < 5:
            return None
        mask = None
        count = frame[4]
        i = 5
        trailer = 0
    tags = []
    for _ in range(count):
        if i >= end:
            return None
        n = frame[i]
        j = i + 1 + n
        if j + trailer > end:
            return None
        tags.append(InventoryTag(frame[i + 1:j], frame[j] if trailer else None))
        i = j + trailer
    if i != end:
        return None
    return InventoryReply(frame[1], frame[3], tuple(tags), mask, frame)
