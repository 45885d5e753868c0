"""MR7901 2.4 GHz e-bike base station (active "safety card" tags), a station that dials in.

``frames`` holds the packet and its messages, ``tlv`` the data report's tag records,
``params`` the parameter blocks, ``framer`` the stream framer, ``protocol`` the driver (replies
owed to a station, tag reads, rejections inside intact packets). Pure: no I/O, no clock.
"""

from __future__ import annotations

from gateway.drivers.mr7901.checksums import crc16_ccitt_false, tag_check_byte
from gateway.drivers.mr7901.errors import DecodeError, EncodeError, MR7901Error
from gateway.drivers.mr7901.framer import MR7901Framer
from gateway.drivers.mr7901.frames import (
    DataReply,
    DataReport,
    FirmwareReply,
    FirmwareRequest,
    Heartbeat,
    HeartbeatReply,
    Login,
    LoginReply,
    Message,
    ParamsCommand,
    ParamsReport,
    RawMessage,
    Register,
    RegisterReply,
    decode_packet,
)
from gateway.drivers.mr7901.protocol import DRIVER, MR7901Driver
from gateway.drivers.mr7901.tlv import RawTlv, TagRecord

__all__ = [
    "DRIVER",
    "DataReply",
    "DataReport",
    "DecodeError",
    "EncodeError",
    "FirmwareReply",
    "FirmwareRequest",
    "Heartbeat",
    "HeartbeatReply",
    "Login",
    "LoginReply",
    "MR7901Driver",
    "MR7901Error",
    "MR7901Framer",
    "Message",
    "ParamsCommand",
    "ParamsReport",
    "RawMessage",
    "RawTlv",
    "Register",
    "RegisterReply",
    "TagRecord",
    "crc16_ccitt_false",
    "decode_packet",
    "tag_check_byte",
]
