"""The TLVs of a data report (0x0004) and the 0x8B01 RFID tag record (manual chapter 7).

Content of a data report: TLVs back to back, each ``type(2) | length(2) | value(length)``, big
endian. The station sends one 0x8B01 TLV per tag; the other types in the manual's index (0x8801,
0x8901, 0x8A01, 0x8B02 attendance) are kept as :class:`RawTlv`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from gateway.drivers.mr7901.checksums import tag_check_byte
from gateway.drivers.mr7901.errors import EncodeError
from gateway.drivers.mr7901.timefield import decode_time, encode_time

__all__ = [
    "ANTENNA_NAMES",
    "CHANNEL_ANTENNA",
    "CHANNEL_IN_RANGE",
    "CHANNEL_STAY",
    "STATUS_KEY",
    "STATUS_LOW_VOLTAGE",
    "TAG_TYPE_CARD",
    "TAG_TYPE_EBIKE",
    "TAG_TYPE_EBIKE_KEY",
    "TAG_VALUE_LEN",
    "TLV_HEADER_LEN",
    "TYPE_TAG",
    "RawTlv",
    "TagRecord",
    "Tlv",
    "parse_tlvs",
]

TLV_HEADER = struct.Struct(">HH")
TLV_HEADER_LEN = TLV_HEADER.size
TYPE_TAG = 0x8B01
TAG_VALUE_LEN = 17

TAG_TYPE_CARD = 0x20  # the manual's "student card"
TAG_TYPE_EBIKE = 0x30
TAG_TYPE_EBIKE_KEY = 0x31

CHANNEL_IN_RANGE = 0x80
CHANNEL_STAY = 0x40
CHANNEL_ANTENNA = 0x0F
#: Antennas 1-4 face the four approaches of an intersection (manual 7.1.3).
ANTENNA_NAMES = {1: "east", 2: "south", 3: "west", 4: "north"}

STATUS_LOW_VOLTAGE = 0x01
STATUS_KEY = 0x10

# channel, type, id, check, excitation address, status, RSSI (signed), time
_TAG = struct.Struct(">BB4sBHBb6s")
assert _TAG.size == TAG_VALUE_LEN


@dataclass(frozen=True, slots=True)
class RawTlv:
    """A TLV this driver does not interpret, kept whole: ``type(2) | length(2) | value``."""

    type: int
    value: bytes

    kind: ClassVar[str] = "tlv"

    def encode(self) -> bytes:
        if not 0 <= self.type <= 0xFFFF or len(self.value) > 0xFFFF:
            raise EncodeError(f"TLV type {self.type:#x} or length {len(self.value)} too large")
        return TLV_HEADER.pack(self.type, len(self.value)) + self.value


@dataclass(frozen=True, slots=True)
class TagRecord:
    """One tag heard by the station: TLV type 0x8B01, value 17 bytes::

        +---------+------+-------------+-------+------------+--------+------+-------------------+
        | channel | type | tag id (4)  | check | excit. (2) | status | RSSI | time YY MM DD hh  |
        |         |      |             |       |            |        | int8 | mm ss (6)         |
        +---------+------+-------------+-------+------------+--------+------+-------------------+

    channel: bit 7 tag inside the station's range (1) or has left it (0); bit 6 "station stay":
    a periodic report of a tag that stays at the station, and when it is set bit 7 is not valid;
    bits 3-0 antenna 1-4 (east, south, west, north). type: 0x20 card, 0x30 e-bike tag, 0x31 e-bike
    key. check: two's complement of the sum of type + id (:func:`tag_check_byte`). excit.: the
    excitation (trigger) address, 0 when none (its byte order is not documented; kept big endian).
    status: bit 0 low voltage, bit 4 key. RSSI: signed dBm (``B2`` = -78). time: the station's
    local clock when it read the tag.

    ``check`` is kept as sent, so a record whose check byte does not match (``check_ok`` False)
    survives decoding and can be reported; :meth:`make` computes it. ``raw`` is the whole TLV as
    received (21 bytes), not compared.
    """

    channel: int
    tag_type: int
    tag_id: bytes
    check: int
    excitation: int = 0
    status: int = 0
    rssi_dbm: int = 0
    time: datetime | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)

    kind: ClassVar[str] = "tag"

    @classmethod
    def make(
        cls,
        tag_id: bytes | str,
        *,
        tag_type: int = TAG_TYPE_EBIKE,
        antenna: int = 1,
        in_range: bool | None = True,
        low_battery: bool = False,
        key: bool = False,
        rssi_dbm: int = -60,
        excitation: int = 0,
        time: datetime | None = None,
    ) -> TagRecord:
        """A record with a correct check byte. ``in_range=None`` makes a "station stay" report
        (bit 6 set, bit 7 clear); ``tag_id`` is 4 bytes or 8 hex digits."""
        tid = bytes.fromhex(tag_id) if isinstance(tag_id, str) else bytes(tag_id)
        if len(tid) != 4:
            raise EncodeError(f"tag id must be 4 bytes, got {tid.hex()!r}")
        if not 0 <= antenna <= CHANNEL_ANTENNA:
            raise EncodeError(f"antenna {antenna} outside 0..15")
        channel = antenna
        if in_range is None:
            channel |= CHANNEL_STAY
        elif in_range:
            channel |= CHANNEL_IN_RANGE
        status = (STATUS_LOW_VOLTAGE if low_battery else 0) | (STATUS_KEY if key else 0)
        return cls(channel=channel, tag_type=tag_type, tag_id=tid,
                   check=tag_check_byte(bytes((tag_type,)) + tid), excitation=excitation,
                   status=status, rssi_dbm=rssi_dbm, time=time)

    @classmethod
    def parse(cls, value: bytes, raw: bytes = b"") -> TagRecord:
        """The record in a 17-byte TLV value (``struct.error`` on another length)."""
        ch, typ, tid, check, exc, status, rssi, when = _TAG.unpack(value)
        return cls(channel=ch, tag_type=typ, tag_id=tid, check=check, excitation=exc,
                   status=status, rssi_dbm=rssi, time=decode_time(when), raw=raw)

    def value(self) -> bytes:
        try:
            return _TAG.pack(self.channel, self.tag_type, self.tag_id, self.check,
                             self.excitation, self.status, self.rssi_dbm, encode_time(self.time))
        except struct.error as exc:
            raise EncodeError(f"tag record field out of range: {exc}") from None

    def encode(self) -> bytes:
        """The whole TLV: ``8B 01 00 11`` + the 17-byte value."""
        return TLV_HEADER.pack(TYPE_TAG, TAG_VALUE_LEN) + self.value()

    @property
    def tag_hex(self) -> str:
        """The tag id as 8 upper-case hex digits (the TagRead's ``tag_id``)."""
        return self.tag_id.hex().upper()

    @property
    def expected_check(self) -> int:
        return tag_check_byte(bytes((self.tag_type,)) + self.tag_id)

    @property
    def check_ok(self) -> bool:
        return self.check == self.expected_check

    @property
    def antenna(self) -> int | None:
        """1-4 as sent; None for 0 (no antenna named)."""
        return (self.channel & CHANNEL_ANTENNA) or None

    @property
    def stay(self) -> bool:
        """The "station stay" flag: a periodic report of a tag that is still present."""
        return bool(self.channel & CHANNEL_STAY)

    @property
    def in_range(self) -> bool | None:
        """True: inside the station's range; False: it has left; None on a stay report (bit 7
        is then not valid). This follows the manual's bit table; its example record labels
        channel 0x01 "in" all the same (see docs/mr7901.md: to verify on a real station)."""
        if self.channel & CHANNEL_STAY:
            return None
        return bool(self.channel & CHANNEL_IN_RANGE)

    @property
    def low_battery(self) -> bool:
        return bool(self.status & STATUS_LOW_VOLTAGE)

    @property
    def key(self) -> bool:
        return bool(self.status & STATUS_KEY)

    @property
    def rssi_raw(self) -> int:
        """The RSSI byte as sent (0-255)."""
        return self.rssi_dbm & 0xFF


Tlv = TagRecord | RawTlv


def parse_tlvs(content: bytes) -> tuple[tuple[Tlv, ...], bytes]:
    """The TLVs in a data report's content, and the trailing bytes that do not form a whole TLV
    (a length running past the end). A 0x8B01 TLV of another length than 17 stays a RawTlv."""
    out: list[Tlv] = []
    pos, end = 0, len(content)
    while end - pos >= TLV_HEADER_LEN:
        typ, length = TLV_HEADER.unpack_from(content, pos)
        stop = pos + TLV_HEADER_LEN + length
        if stop > end:
            break
        value = content[pos + TLV_HEADER_LEN:stop]
        if typ == TYPE_TAG and length == TAG_VALUE_LEN:
            out.append(TagRecord.parse(value, raw=content[pos:stop]))
        else:
            out.append(RawTlv(typ, value))
        pos = stop
    return tuple(out), content[pos:]
