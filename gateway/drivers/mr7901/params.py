"""Parameter blocks of the 0x000A / 0x800A messages (manual 6.6 and chapter 8).

Only the two blocks a gateway has use for are decoded: the antenna information (gains and RSSI
filter thresholds, to check a station's set-up) and the user configuration (its de-duplication
window and stay-report interval decide how often a present tag is re-reported, hence the
sighting exit time). The others stay bytes in :class:`~.frames.ParamsReport`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from gateway.drivers.mr7901.errors import EncodeError

__all__ = [
    "PARAM_ANTENNA",
    "PARAM_CONFIRM",
    "PARAM_HARDWARE",
    "PARAM_STATUS",
    "PARAM_TAG_REPORTING",
    "PARAM_USER_CONFIG",
    "AntennaInfo",
    "UserConfig",
]

PARAM_ANTENNA = 0x02
PARAM_TAG_REPORTING = 0x03
PARAM_USER_CONFIG = 0x10
PARAM_STATUS = 0x11
PARAM_HARDWARE = 0x12
PARAM_CONFIRM = 0x80


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def _ip_bytes(text: str) -> bytes:
    try:
        parts = bytes(int(p) for p in text.split("."))
    except ValueError:
        raise EncodeError(f"not an IPv4 address: {text!r}") from None
    if len(parts) != 4:
        raise EncodeError(f"not an IPv4 address: {text!r}")
    return parts


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1")


def _str_field(text: str, size: int) -> bytes:
    data = text.encode("latin-1")
    if len(data) >= size or b"\0" in data:
        raise EncodeError(f"{text!r} does not fit a {size}-byte string field")
    return data.ljust(size, b"\0")


@dataclass(frozen=True, slots=True)
class AntennaInfo:
    """Antenna information, parameter type 0x02 of a 0x000A report::

        +------------------------------+-------------+-----------------------+
        | firmware version x4 (2 each) | gain x4     | RSSI threshold x4     |
        | FF FF: not read              | 0-31, FF: ? | signed dBm, 01: ?     |
        +------------------------------+-------------+-----------------------+

    (The 0x800A command that sets them carries only the gains and thresholds.) Values are kept
    as sent, including the "not read" markers.
    """

    versions: tuple[int, int, int, int]
    gains: tuple[int, int, int, int]
    rssi_thresholds: tuple[int, int, int, int]

    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">4H4B4b")

    @classmethod
    def parse(cls, data: bytes) -> AntennaInfo:
        v = cls.LAYOUT.unpack(data)
        return cls(versions=v[0:4], gains=v[4:8], rssi_thresholds=v[8:12])

    def encode(self) -> bytes:
        return self.LAYOUT.pack(*self.versions, *self.gains, *self.rssi_thresholds)


@dataclass(frozen=True, slots=True)
class UserConfig:
    """The 182-byte user configuration (parameter type 0x10; manual chapter 8). Little-endian
    where the manual says "low byte first" (the window, the stay interval, ports)::

        off  size  field                    off  size  field
          0     1  marker (0x55)             75    32  LAN server host
          1     1  communication mode       107     2  LAN server port
          2     2  firmware major, minor    109     6  LAN MAC
          4     1  buzzer                   115    28  reserved
          5     1  reserved                 143     8  antenna firmware x4
          6     2  de-dup window s (20-)    151     1  GPRS signal
          8    16  device id                152    16  product number
         24     2  stay report s (0, 60-)   168     4  antenna RSSI thresholds (int8)
         26     1  DHCP                     172     4  antenna gains
         27    12  LAN IP, mask, gateway    176     1  bluetooth output
         39     2  LAN local port           177     1  link status (0xA0-0xA3)
         41    32  GPRS server host         178     4  reserved
         73     2  GPRS server port

    ``dedup_window_s``: a tag heard again within the window is not reported again; from V3.0
    the station also decides from it that a tag has left (the out-of-range report).
    ``stay_report_s``: 0 off, else the interval at which a tag that stays is re-reported with
    the "station stay" flag (V3.3).
    """

    marker: int
    mode: int
    firmware: tuple[int, int]
    buzzer: int
    dedup_window_s: int
    device_id: str
    stay_report_s: int
    dhcp: int
    lan_ip: str
    lan_mask: str
    lan_gateway: str
    lan_port: int
    gprs_host: str
    gprs_port: int
    lan_host: str
    lan_server_port: int
    mac: bytes
    antenna_versions: tuple[int, int, int, int]
    gprs_signal: int
    product_id: str
    rssi_thresholds: tuple[int, int, int, int]
    gains: tuple[int, int, int, int]
    bluetooth: int
    link_status: int
    reserved: bytes = field(default=bytes(1 + 28 + 4), repr=False)

    SIZE: ClassVar[int] = 182
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(
        "<BB2BBsH16sHB4s4s4sH32sH32sH6s28s8sB16s4b4BBB4s")

    @classmethod
    def parse(cls, data: bytes) -> UserConfig:
        v = cls.LAYOUT.unpack(data)
        ant = struct.unpack(">4H", v[20])
        return cls(
            marker=v[0], mode=v[1], firmware=(v[2], v[3]), buzzer=v[4], dedup_window_s=v[6],
            device_id=_cstr(v[7]), stay_report_s=v[8], dhcp=v[9], lan_ip=_ip(v[10]),
            lan_mask=_ip(v[11]), lan_gateway=_ip(v[12]), lan_port=v[13], gprs_host=_cstr(v[14]),
            gprs_port=v[15], lan_host=_cstr(v[16]), lan_server_port=v[17], mac=v[18],
            antenna_versions=(ant[0], ant[1], ant[2], ant[3]), gprs_signal=v[21],
            product_id=_cstr(v[22]), rssi_thresholds=(v[23], v[24], v[25], v[26]),
            gains=(v[27], v[28], v[29], v[30]), bluetooth=v[31], link_status=v[32],
            reserved=v[5] + v[19] + v[33],
        )

    def encode(self) -> bytes:
        if len(self.reserved) != 33 or len(self.mac) != 6:
            raise EncodeError("reserved must be 33 bytes and mac 6 bytes")
        try:
            return self.LAYOUT.pack(
                self.marker, self.mode, *self.firmware, self.buzzer, self.reserved[0:1],
                self.dedup_window_s, _str_field(self.device_id, 16), self.stay_report_s,
                self.dhcp, _ip_bytes(self.lan_ip), _ip_bytes(self.lan_mask),
                _ip_bytes(self.lan_gateway), self.lan_port, _str_field(self.gprs_host, 32),
                self.gprs_port, _str_field(self.lan_host, 32), self.lan_server_port, self.mac,
                self.reserved[1:29], struct.pack(">4H", *self.antenna_versions),
                self.gprs_signal, _str_field(self.product_id, 16), *self.rssi_thresholds,
                *self.gains, self.bluetooth, self.link_status, self.reserved[29:33])
        except struct.error as exc:
            raise EncodeError(f"user configuration field out of range: {exc}") from None
