"""Impinj R2000 "0xA0" frames: one frozen dataclass per kind, the checksum, the frequency and
RSSI conversions, and the parsing of one complete, checksum-checked frame. No buffering here
(that is :mod:`.framer`).

Every frame, host command or reader reply, has one layout (manual V2.2, section 1.2)::

    A0 | Len | Address | Cmd | Data... | Check          Len = len(Data) + 3 (3..255)

Len counts the bytes after itself, so a frame is Len + 2 bytes (at most 257). Check is the
two's complement of the 8-bit sum of every byte before it, head included: a whole frame sums to
0 mod 256. Address 0-254 names a reader, 0xFF is the public address every reader obeys.

Replies are told apart by (Cmd, Len), never by Len alone (README section 1): a tag frame with a
4-byte EPC and the 0x8A summary both have Len 0x0B. A tag frame is one whose PC word announces
exactly the EPC length its Len leaves room for. Frames this module does not decode further
(a known command's other replies, an unknown command) are kept whole as :class:`RawFrame`.

Every dataclass carries ``raw``, the exact bytes; built from values, ``raw`` is left empty and
filled with :meth:`encode`, which also checks the values fit the wire. :class:`TagFrame`, the
hot path, is its bytes alone, with the values as properties (built from values with
:meth:`TagFrame.build`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from gateway.drivers.base import EncodesRaw
from gateway.drivers.r2000.codes import (
    CMD_FAST_SWITCH_INVENTORY,
    CMD_GET_FIRMWARE_VERSION,
    CMD_GET_OUTPUT_POWER,
    CMD_GET_WORK_ANTENNA,
    CMD_NAMES,
    ERROR_ANTENNA_MISSING,
    ERROR_CODES,
    HEAD,
    MAX_LEN,
    STATUS_REPLY_CMDS,
    SUCCESS,
    TAG_CMDS,
    error_name,
)
from pak.errors import PakError

__all__ = [
    "FREQUENCY_MHZ",
    "REPLY_SHAPES",
    "RSSI_DBM",
    "SHAPE_KNOWN",
    "SHAPE_TAG",
    "AntennaMissing",
    "Command",
    "FastSwitchSummary",
    "FirmwareReply",
    "InventorySummary",
    "OutputPowerReply",
    "R2000Frame",
    "R2000FrameError",
    "RawFrame",
    "StatusReply",
    "TagFrame",
    "WorkAntennaReply",
    "checksum",
    "epc_len_of_pc",
    "frame_bytes",
    "frequency_mhz",
    "is_tag_frame",
    "parse_command",
    "parse_reply",
    "pc_for_epc",
    "rssi_dbm",
    "rssi_raw_for_dbm",
    "split_rssi_8port",
    "trusted_tag_frame",
]


class R2000FrameError(PakError):
    """A frame cannot be encoded as asked (a field out of range, a frame over 257 bytes)."""


# -- checksum ----------------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """The Check byte for ``data`` (every byte before it, head included): the two's complement
    of their 8-bit sum. ``A0 03 01 72`` -> ``0xEA``."""
    return -sum(data) & 0xFF


def frame_bytes(address: int, cmd: int, data: bytes = b"") -> bytes:
    """``A0 | Len | Address | Cmd | Data | Check``, checked to fit the wire."""
    _check_byte("address", address)
    _check_byte("command", cmd)
    length = len(data) + 3
    if length > MAX_LEN:
        raise R2000FrameError(f"{len(data)} data bytes: a frame carries at most "
                              f"{MAX_LEN - 3}")
    body = bytes((HEAD, length, address, cmd)) + data
    return body + bytes((-sum(body) & 0xFF,))


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise R2000FrameError(f"{name} {value} is not a byte")


# -- frequency, RSSI, PC ---------------------------------------------------------------------

def _frequency(index: int) -> float | None:
    # Chapter 4: indexes 0-6 are the European band from 865.00 MHz, 7-59 the American band
    # from 902.00 MHz, both in 0.5 MHz steps; 60-63 are not defined.
    if index <= 6:
        return 865.0 + 0.5 * index
    if index <= 59:
        return 902.0 + 0.5 * (index - 7)
    return None


#: Carrier frequency in MHz by frequency index (the high 6 bits of FreqAnt), None where the
#: manual defines none.
FREQUENCY_MHZ: tuple[float | None, ...] = tuple(_frequency(i) for i in range(64))


def frequency_mhz(index: int) -> float | None:
    """MHz of a frequency index 0-63 (chapter 4); None for 60-63."""
    return FREQUENCY_MHZ[index]


def _dbm(raw: int) -> int:
    # Chapter 5's table: 98 -> -31 dBm ... 90 -> -39, then 89 -> -41 ... 31 -> -99: one dBm a
    # step, with no -40 (the table's "65 -> -55 dBm" is a misprint for -65 between 66 -> -64
    # and 64 -> -66). Outside 31-98 the same two lines are extended.
    return raw - 129 if raw >= 90 else raw - 130


#: dBm by raw RSSI byte.
RSSI_DBM: tuple[int, ...] = tuple(_dbm(r) for r in range(256))


def rssi_dbm(raw: int) -> int:
    """dBm of a raw RSSI value (chapter 5). On 8-port V3 firmware split the byte first
    (:func:`split_rssi_8port`)."""
    return RSSI_DBM[raw]


def split_rssi_8port(byte: int) -> tuple[int, int]:
    """8-port V3 firmware: bit 7 of the tag frame's RSSI byte is the antenna number's high bit
    (antennas 5-8). Returns ``(raw RSSI 0-127, 4 or 0 to add to the 0-based antenna)``."""
    return byte & 0x7F, (byte >> 5) & 4


def rssi_raw_for_dbm(dbm: int) -> int:
    """The raw RSSI value a reader sends for ``dbm`` (inverse of :func:`rssi_dbm`, clamped to
    0-127; -40 dBm, which the table lacks, is sent as -39)."""
    raw = dbm + 129 if dbm >= -39 else dbm + 130
    return min(max(raw, 0), 0x7F)


def epc_len_of_pc(pc: int) -> int:
    """EPC bytes a PC word announces: its top 5 bits count 16-bit words."""
    return (pc >> 11) * 2


def pc_for_epc(epc: bytes) -> int:
    """The PC word of a plain EPC of ``epc``'s length (other PC bits clear)."""
    if len(epc) % 2 or len(epc) > 62:
        raise R2000FrameError(f"an EPC of {len(epc)} bytes: a PC counts 0-31 whole words")
    return (len(epc) // 2) << 11


# -- frames ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command(EncodesRaw):
    """A host command (host to reader)::

        A0 | Len | Address | Cmd | Data... | Check

    Seen on the gateway side only as our own bytes echoed back (RS-485 adapters hear what they
    send); the simulated reader parses what the host sends as these.
    """

    address: int
    cmd: int
    data: bytes = b""
    raw: bytes = b""

    kind: ClassVar[str] = "command"

    def encode(self) -> bytes:
        return frame_bytes(self.address, self.cmd, self.data)


@dataclass(frozen=True, slots=True, repr=False)
class TagFrame:
    """One tag heard during a 0x89, 0x8A or 0x8B inventory round::

        A0 | Len | Address | Cmd | FreqAnt | PC(2) | EPC... | RSSI | Check
                                   |         big-endian
                                   high 6 bits: frequency index, low 2 bits: antenna (0-based)

        Len = 7 + len(EPC), and len(EPC) = (PC >> 11) * 2

    The frame is held as its bytes alone and its fields are read from them when asked for: a
    busy reader sends little else, and an object with one slot is the cheapest thing the
    framer can hand out (the whole budget is 2 us per read, checksum and TagRead included).
    Build one from values with :meth:`build`; ``TagFrame(raw)`` checks ``raw`` is one.

    ``rssi`` is the raw byte (on 8-port V3 firmware its bit 7 is the antenna's high bit: see
    :func:`split_rssi_8port`).
    """

    raw: bytes

    kind: ClassVar[str] = "tag"
    #: The values a frame carries, for display (they are properties, not dataclass fields).
    FIELDS: ClassVar[tuple[str, ...]] = ("address", "cmd", "freq_ant", "pc", "epc", "rssi")

    def __post_init__(self) -> None:
        raw = self.raw
        if not (len(raw) >= 9 and raw[0] == HEAD and raw[1] + 2 == len(raw)
                and is_tag_frame(raw) and not sum(raw) & 0xFF):
            raise R2000FrameError(f"not a tag frame: {raw.hex(' ').upper()}")

    @classmethod
    def build(cls, address: int, cmd: int, freq_ant: int, pc: int, epc: bytes,
              rssi: int) -> TagFrame:
        """The frame carrying these values (``pc`` must announce ``len(epc)``: see
        :func:`pc_for_epc`)."""
        if cmd not in TAG_CMDS:
            raise R2000FrameError(f"command 0x{cmd:02X} has no tag frames")
        _check_byte("FreqAnt", freq_ant)
        _check_byte("RSSI", rssi)
        if not 0 <= pc <= 0xFFFF:
            raise R2000FrameError(f"PC {pc} is not 16 bits")
        if epc_len_of_pc(pc) != len(epc):
            raise R2000FrameError(f"PC 0x{pc:04X} announces {epc_len_of_pc(pc)} EPC bytes, "
                                  f"not {len(epc)}")
        return cls(frame_bytes(address, cmd, bytes((freq_ant, pc >> 8, pc & 0xFF)) + epc
                               + bytes((rssi,))))

    @property
    def address(self) -> int:
        return self.raw[2]

    @property
    def cmd(self) -> int:
        return self.raw[3]

    @property
    def freq_ant(self) -> int:
        return self.raw[4]

    @property
    def pc(self) -> int:
        return (self.raw[5] << 8) | self.raw[6]

    @property
    def epc(self) -> bytes:
        return self.raw[7:-2]

    @property
    def rssi(self) -> int:
        return self.raw[-2]

    @property
    def frequency_index(self) -> int:
        return self.raw[4] >> 2

    @property
    def antenna_index(self) -> int:
        """The FreqAnt byte's antenna, 0-based (0-3)."""
        return self.raw[4] & 3

    def encode(self) -> bytes:
        return self.raw

    def __repr__(self) -> str:
        return (f"TagFrame(address={self.address}, cmd=0x{self.cmd:02X}, "
                f"freq_ant=0x{self.freq_ant:02X}, pc=0x{self.pc:04X}, "
                f"epc={self.epc.hex().upper()}, rssi={self.rssi})")


_object_new = object.__new__
_set_tag_raw = TagFrame.__dict__["raw"].__set__  # the slot's own descriptor


def trusted_tag_frame(raw: bytes) -> TagFrame:
    """The ``TagFrame(raw)`` of bytes the caller has checked already (the framer has): the same
    frozen object, made without repeating the checks and without the frozen ``__init__``'s
    ``object.__setattr__``, in 0.15 us instead of 0.7 us. A busy reader sends little else."""
    frame = _object_new(TagFrame)
    _set_tag_raw(frame, raw)
    return frame


@dataclass(frozen=True, slots=True)
class InventorySummary(EncodesRaw):
    """The end of a 0x89 (or 0x8B) round: the reader stops until it gets the next command.
    Two shapes, both accepted::

        V2.2 manual:    A0 | 08 | Address | Cmd | AntID | TotalRead(4)              | Check
        real firmware:  A0 | 0A | Address | Cmd | AntID | ReadRate(2) | TotalRead(4) | Check

    ``read_rate`` (tags/s) is None for the Len 0x08 shape. Counts are big-endian.
    """

    address: int
    cmd: int
    antenna_id: int
    total_read: int
    read_rate: int | None = None
    raw: bytes = b""

    kind: ClassVar[str] = "inventory_summary"

    def encode(self) -> bytes:
        if self.cmd not in TAG_CMDS or self.cmd == CMD_FAST_SWITCH_INVENTORY:
            raise R2000FrameError(f"command 0x{self.cmd:02X} has no such summary")
        _check_byte("AntID", self.antenna_id)
        rate = b"" if self.read_rate is None else _uint(self.read_rate, 2, "ReadRate")
        data = bytes((self.antenna_id,)) + rate + _uint(self.total_read, 4, "TotalRead")
        return frame_bytes(self.address, self.cmd, data)


@dataclass(frozen=True, slots=True)
class FastSwitchSummary(EncodesRaw):
    """The end of a 0x8A (fast antenna switch) round::

        A0 | 0B | Address | 8A | TotalRead(4) | CommandDuration(4, ms) | Check
    """

    address: int
    total_read: int
    duration_ms: int
    raw: bytes = b""

    kind: ClassVar[str] = "fast_switch_summary"
    cmd: ClassVar[int] = CMD_FAST_SWITCH_INVENTORY

    def encode(self) -> bytes:
        data = _uint(self.total_read, 4, "TotalRead") + _uint(self.duration_ms, 4, "duration")
        return frame_bytes(self.address, self.cmd, data)


@dataclass(frozen=True, slots=True)
class AntennaMissing(EncodesRaw):
    """During a 0x8A round, an antenna the round should use is not connected (the antenna
    detector is on); the round goes on with the next antenna::

        A0 | 05 | Address | 8A | AntID | 22 | Check
    """

    address: int
    antenna_id: int
    cmd: int = CMD_FAST_SWITCH_INVENTORY
    raw: bytes = b""

    kind: ClassVar[str] = "antenna_missing"

    def encode(self) -> bytes:
        if self.cmd not in TAG_CMDS:
            raise R2000FrameError(f"command 0x{self.cmd:02X} reports no missing antenna")
        _check_byte("AntID", self.antenna_id)
        return frame_bytes(self.address, self.cmd, bytes((self.antenna_id,
                                                          ERROR_ANTENNA_MISSING)))


@dataclass(frozen=True, slots=True)
class StatusReply(EncodesRaw):
    """A command's one-byte result, what the manual calls its Error_Code::

        A0 | 04 | Address | Cmd | Code | Check

    0x10 (``command_success``) answers a setting that took (set work antenna, set output
    power, ...); any other code is an error (chapter 3), e.g. an inventory that could not run:
    0x22 ``antenna_missing_error`` for the work antenna, 0x31 ``tag_inventory_error``.
    """

    address: int
    cmd: int
    code: int
    raw: bytes = b""

    kind: ClassVar[str] = "status"

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    @property
    def code_name(self) -> str:
        return error_name(self.code)

    def encode(self) -> bytes:
        _check_byte("code", self.code)
        return frame_bytes(self.address, self.cmd, bytes((self.code,)))


@dataclass(frozen=True, slots=True)
class FirmwareReply(EncodesRaw):
    """Reply to "get firmware version" (0x72), the gateway's watchdog ping::

        A0 | 05 | Address | 72 | Major | Minor | Check
    """

    address: int
    major: int
    minor: int
    raw: bytes = b""

    kind: ClassVar[str] = "firmware"
    cmd: ClassVar[int] = CMD_GET_FIRMWARE_VERSION

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def encode(self) -> bytes:
        _check_byte("major", self.major)
        _check_byte("minor", self.minor)
        return frame_bytes(self.address, self.cmd, bytes((self.major, self.minor)))


@dataclass(frozen=True, slots=True)
class WorkAntennaReply(EncodesRaw):
    """Reply to "get work antenna" (0x75)::

        A0 | 04 | Address | 75 | AntID (0-based) | Check
    """

    address: int
    antenna_id: int
    raw: bytes = b""

    kind: ClassVar[str] = "work_antenna"
    cmd: ClassVar[int] = CMD_GET_WORK_ANTENNA

    def encode(self) -> bytes:
        if not 0 <= self.antenna_id < SUCCESS:
            raise R2000FrameError(f"antenna id {self.antenna_id}: 0-15 (higher bytes are "
                                  "error codes)")
        return frame_bytes(self.address, self.cmd, bytes((self.antenna_id,)))


@dataclass(frozen=True, slots=True)
class OutputPowerReply(EncodesRaw):
    """Reply to "get output power" (0x77), in dBm: one value (V2.2), or one per antenna port
    on V3 firmware with 4 or 8 ports::

        A0 | 04 | Address | 77 | Power | Check
        A0 | 07 | Address | 77 | Power1..Power4 | Check
        A0 | 0B | Address | 77 | Power1..Power8 | Check
    """

    address: int
    powers: tuple[int, ...]
    raw: bytes = b""

    kind: ClassVar[str] = "output_power"
    cmd: ClassVar[int] = CMD_GET_OUTPUT_POWER

    def encode(self) -> bytes:
        if len(self.powers) not in (1, 4, 8):
            raise R2000FrameError(f"{len(self.powers)} power values: 1, 4 or 8")
        for p in self.powers:
            _check_byte("power", p)
        return frame_bytes(self.address, self.cmd, bytes(self.powers))


@dataclass(frozen=True, slots=True)
class RawFrame(EncodesRaw):
    """A valid frame this driver does not decode further: a known command's other replies, or
    a command code the manual does not list (newer firmware). Kept whole and counted::

        A0 | Len | Address | Cmd | Data... | Check
    """

    address: int
    cmd: int
    data: bytes = b""
    raw: bytes = b""

    kind: ClassVar[str] = "raw"

    @property
    def cmd_name(self) -> str | None:
        return CMD_NAMES.get(self.cmd)

    def encode(self) -> bytes:
        return frame_bytes(self.address, self.cmd, self.data)


R2000Frame = (Command | TagFrame | InventorySummary | FastSwitchSummary | AntennaMissing
              | StatusReply | FirmwareReply | WorkAntennaReply | OutputPowerReply | RawFrame)


def _uint(value: int, size: int, name: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise R2000FrameError(f"{name} {value} does not fit {size} bytes")
    return value.to_bytes(size, "big")


# -- parsing one complete, checksum-checked frame ---------------------------------------------


def is_tag_frame(raw: bytes) -> bool:
    """Whether a complete frame is a tag frame: a tag command, and a PC whose EPC length plus
    the 7 other bytes Len counts equals Len."""
    return (raw[3] in TAG_CMDS and len(raw) >= 9
            and raw[1] == ((raw[5] >> 3) << 1) + 7)


# Big-endian data layouts of the summaries, after Cmd.
_SUMMARY = struct.Struct(">BI")  # AntID, TotalRead
_SUMMARY_WITH_RATE = struct.Struct(">BHI")  # AntID, ReadRate, TotalRead
_FAST_SWITCH_SUMMARY = struct.Struct(">II")  # TotalRead, CommandDuration


def parse_command(raw: bytes) -> Command:
    """A complete, checksum-checked frame read as a host command."""
    return Command(raw[2], raw[3], raw[4:-1], raw)


def parse_reply(raw: bytes) -> R2000Frame:
    """A complete, checksum-checked frame from a reader, dispatched on (Cmd, Len). Never
    raises: what does not match a known shape is a :class:`RawFrame`."""
    length = raw[1]
    address = raw[2]
    cmd = raw[3]
    if length == 3:
        # No data: replies always carry some, so this is a command (an echo of ours).
        return Command(address, cmd, b"", raw)
    if cmd in TAG_CMDS:
        if not length & 1:
            # Even: never a tag frame (7 + whole words). The summary of a 0x89 / 0x8B round.
            if cmd != CMD_FAST_SWITCH_INVENTORY:
                if length == 0x0A:
                    antenna_id, rate, total = _SUMMARY_WITH_RATE.unpack_from(raw, 4)
                    return InventorySummary(address, cmd, antenna_id, total, rate, raw)
                if length == 0x08:
                    antenna_id, total = _SUMMARY.unpack_from(raw, 4)
                    return InventorySummary(address, cmd, antenna_id, total, None, raw)
        elif is_tag_frame(raw):
            return trusted_tag_frame(raw)  # the caller has checked the bytes
        elif length == 0x0B and cmd == CMD_FAST_SWITCH_INVENTORY:
            total, duration = _FAST_SWITCH_SUMMARY.unpack_from(raw, 4)
            return FastSwitchSummary(address, total, duration, raw)
        elif length == 0x05 and raw[5] == ERROR_ANTENNA_MISSING:
            return AntennaMissing(address, raw[4], cmd, raw)
    elif cmd == CMD_GET_FIRMWARE_VERSION and length == 0x05:
        return FirmwareReply(address, raw[4], raw[5], raw)
    elif cmd == CMD_GET_WORK_ANTENNA and length == 0x04 and raw[4] < SUCCESS:
        return WorkAntennaReply(address, raw[4], raw)
    elif cmd == CMD_GET_OUTPUT_POWER and length in (0x04, 0x07, 0x0B):
        return OutputPowerReply(address, tuple(raw[4:-1]), raw)
    if length == 0x04 and (cmd in STATUS_REPLY_CMDS or cmd == CMD_GET_WORK_ANTENNA):
        if raw[4] not in ERROR_CODES:
            # No reader sends a code chapter 3 does not list, while a command's one parameter
            # byte is usually such a byte: ``A0 04 01 74 00 E7`` selects antenna 1.
            return Command(address, cmd, raw[4:5], raw)
        return StatusReply(address, cmd, raw[4], raw)
    return RawFrame(address, cmd, raw[4:-1], raw)


#: Reply shapes the framer trusts before the frame is complete (see :mod:`.framer`):
#: bit 0 set: (Cmd, Len) is a shape :func:`parse_reply` decodes; bit 1 set: Len is a tag
#: frame's length (7 + an even EPC length up to 62), to be confirmed by the PC word.
SHAPE_KNOWN = 1
SHAPE_TAG = 2


def _reply_shapes() -> bytes:
    table = bytearray(256 * 256)
    for cmd in range(256):
        table[cmd << 8 | 3] = SHAPE_KNOWN  # a command echo
    for cmd in STATUS_REPLY_CMDS:
        table[cmd << 8 | 4] = SHAPE_KNOWN
    table[CMD_GET_FIRMWARE_VERSION << 8 | 5] = SHAPE_KNOWN
    table[CMD_GET_WORK_ANTENNA << 8 | 4] = SHAPE_KNOWN
    for length in (4, 7, 11):
        table[CMD_GET_OUTPUT_POWER << 8 | length] = SHAPE_KNOWN
    for cmd in TAG_CMDS:
        table[cmd << 8 | 5] = SHAPE_KNOWN
        for length in ((0x0B,) if cmd == CMD_FAST_SWITCH_INVENTORY else (0x08, 0x0A)):
            table[cmd << 8 | length] = SHAPE_KNOWN
        for length in range(7, 7 + 62 + 1, 2):
            table[cmd << 8 | length] |= SHAPE_TAG
    return bytes(table)


#: ``REPLY_SHAPES[cmd << 8 | len]``: see :data:`SHAPE_KNOWN`, :data:`SHAPE_TAG`.
REPLY_SHAPES = _reply_shapes()
