"""MR7901 packets and the messages they carry (manual chapters 5, 6 and 9). Pure: no buffering.

Packet, both directions::

    +-------+---------------------------------------------------+----------------+-----------+
    | 55 AA | header (28 bytes, big endian)                     | content        | CRC16     |
    |       | length(2) command(2) serial(4) version(2)         | (per command)  | high byte |
    |       | security(2) device id (16, ASCII, NUL-padded)     |                | first     |
    +-------+---------------------------------------------------+----------------+-----------+

``length`` counts header + content (not the 55 AA, not the CRC). The CRC is CRC-16/CCITT-FALSE
over header + content. Commands from the station have bit 15 clear; the platform answers with
the same code | 0x8000 and, as in every example of the manual, the serial number of the message
it answers.

Every message is a frozen dataclass with the header fields (``device_id``, ``serial``,
``version``, ``security``), its content fields, ``raw`` (the packet as received; not compared, so
``decode_packet(m.encode()) == m``), ``kind`` and ``encode()``. A packet whose command is unknown,
or whose content does not have the length this driver knows for its command (firmware versions
differ), decodes to :class:`RawMessage`, keeping its command code, so the driver can still
answer it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from gateway.drivers.mr7901.checksums import crc16_ccitt_false
from gateway.drivers.mr7901.errors import DecodeError, EncodeError
from gateway.drivers.mr7901.timefield import TIME_LEN, decode_time, encode_time
from gateway.drivers.mr7901.tlv import TagRecord, Tlv, parse_tlvs

__all__ = [
    "CMD_DATA",
    "CMD_FIRMWARE",
    "CMD_HEARTBEAT",
    "CMD_LOGIN",
    "CMD_PARAMS",
    "CMD_REGISTER",
    "CRC_LEN",
    "HEADER_LEN",
    "MAX_LENGTH",
    "MESSAGE_TYPES",
    "MIN_LENGTH",
    "OP_NONE",
    "OP_SET_TIME",
    "PROTOCOL_VERSION",
    "REPLY_FLAG",
    "RESULT_OK",
    "RESULT_REFUSED",
    "SOF",
    "DataReply",
    "DataReport",
    "FirmwareReply",
    "FirmwareRequest",
    "Heartbeat",
    "HeartbeatReply",
    "Login",
    "LoginReply",
    "Message",
    "ParamsCommand",
    "ParamsReport",
    "RawMessage",
    "Register",
    "RegisterReply",
    "decode_packet",
    "message_from_packet",
    "pack_packet",
]

SOF = b"\x55\xaa"
HEADER = struct.Struct(">HHIHH16s")
HEADER_LEN = HEADER.size  # 28
CRC_LEN = 2
#: Smallest and largest ``length`` field accepted. The manual's largest message is a firmware
#: block (0x800D: 28 + 1 + 2 + 512 = 543); data reports grow by 21 bytes a tag and the manual
#: sets no limit, so the bound leaves room for about 390 tags while keeping a corrupted length
#: from holding back the stream for long (the framer waits for at most this many bytes).
MIN_LENGTH = HEADER_LEN
MAX_LENGTH = 8192
PROTOCOL_VERSION = 1  # "0x0001 (V0.1)" in every example

REPLY_FLAG = 0x8000
CMD_LOGIN = 0x0001
CMD_HEARTBEAT = 0x0003
CMD_DATA = 0x0004
CMD_REGISTER = 0x0008
CMD_PARAMS = 0x000A
CMD_FIRMWARE = 0x000D

RESULT_OK = 0x00
RESULT_CODE_ERROR = 0xFE  # register: registration code error; login: login error
RESULT_REFUSED = 0xFF  # register / login refused (after a refused login the station waits 3 min)

# Operation byte of the heartbeat and data replies (manual 6.3.2).
OP_NONE = 0x00
OP_UPDATE_FIRMWARE = 0x02
OP_RESET = 0x03
OP_SET_TIME = 0x06  # the station sets its clock from the reply's time and does not answer
OP_CLEAR_BUFFER = 0x08
OP_UPDATE_PARAMS = 0x10
OP_GET_STATUS = 0x11
OP_GET_HARDWARE = 0x12

_HOST_LEN = 32
_U16 = struct.Struct(">H")
_PORT = struct.Struct("<H")  # the one little-endian field of the register reply


def _cstr(field_bytes: bytes) -> str:
    """A NUL-terminated string field (bytes after the first NUL are padding); latin-1 keeps any
    byte, so an odd device id is shown as sent instead of failing."""
    return field_bytes.split(b"\0", 1)[0].decode("latin-1")


def _fixed(text: str, size: int, what: str) -> bytes:
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} {text!r} is not 8-bit text") from None
    if len(data) > size or b"\0" in data:
        raise EncodeError(f"{what} {text!r} longer than {size} bytes or holds NUL")
    return data.ljust(size, b"\0")


def pack_packet(command: int, content: bytes, *, device_id: str, serial: int = 0,
                version: int = PROTOCOL_VERSION, security: int = 0) -> bytes:
    """A whole packet: 55 AA, header, content, CRC."""
    length = HEADER_LEN + len(content)
    if length > 0xFFFF:
        raise EncodeError(f"content of {len(content)} bytes does not fit the length field")
    try:
        header = HEADER.pack(length, command, serial, version, security,
                             _fixed(device_id, 16, "device id"))
    except struct.error as exc:
        raise EncodeError(f"header field out of range: {exc}") from None
    body = header + content
    return SOF + body + _U16.pack(crc16_ccitt_false(body))


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Header fields every message carries; subclasses add their content."""

    COMMAND: ClassVar[int]
    kind: ClassVar[str]
    #: Exact content length this driver decodes the command from (None: at least MIN_CONTENT).
    CONTENT_LEN: ClassVar[int | None] = None
    MIN_CONTENT: ClassVar[int] = 1

    device_id: str = ""
    serial: int = 0
    version: int = PROTOCOL_VERSION
    security: int = 0
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def command(self) -> int:
        return self.COMMAND

    @property
    def is_reply(self) -> bool:
        return bool(self.command & REPLY_FLAG)

    def content(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> Self:
        """The message from its content (of a length :meth:`accepts`) and header fields."""
        raise NotImplementedError

    @classmethod
    def accepts(cls, content_len: int) -> bool:
        if cls.CONTENT_LEN is not None:
            return content_len == cls.CONTENT_LEN
        return content_len >= cls.MIN_CONTENT

    def encode(self) -> bytes:
        return pack_packet(self.command, self.content(), device_id=self.device_id,
                           serial=self.serial, version=self.version, security=self.security)

    def header_fields(self) -> dict[str, object]:
        return {"device_id": self.device_id, "serial": self.serial, "version": self.version,
                "security": self.security}


# --- register (manual 6.1) ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Register(Message):
    """0x0008, station -> platform (the load-balancing server)::

        +-------------+--------------+------------------------+
        | device type | device model | registration code (4)  |
        +-------------+--------------+------------------------+

    Type 0x01 data gateway, 0x02 RFID reader, 0x03 computer; model 0x01 MR7901. The registration
    code is derived from the device id by an algorithm the manual leaves undefined: kept as bytes.
    """

    COMMAND = CMD_REGISTER
    kind = "register"
    CONTENT_LEN = 6

    device_type: int = 0x01
    device_model: int = 0x01
    reg_code: bytes = bytes(4)

    def content(self) -> bytes:
        if len(self.reg_code) != 4:
            raise EncodeError("registration code must be 4 bytes")
        return bytes((self.device_type, self.device_model)) + self.reg_code

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> Register:
        return cls(device_type=content[0], device_model=content[1], reg_code=content[2:6],
                   **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterReply(Message):
    """0x8008, platform -> station: where to log in::

        +--------+----------+---------------------------+-----------------------+
        | result | time (6) | host (32, ASCII, NUL pad) | port (2, LOW byte 1st)|
        +--------+----------+---------------------------+-----------------------+

    Result 0x00 success, 0xFE registration code error, 0xFF refused. The station closes the
    connection and dials ``host:port`` (the "load server") to log in. ``24 13`` = port 4900.
    """

    COMMAND = CMD_REGISTER | REPLY_FLAG
    kind = "register_reply"
    CONTENT_LEN = 1 + TIME_LEN + _HOST_LEN + 2

    result: int = RESULT_OK
    time: datetime | None = None
    host: str = ""
    port: int = 0

    def content(self) -> bytes:
        try:
            port = _PORT.pack(self.port)
        except struct.error:
            raise EncodeError(f"port {self.port} outside 0..65535") from None
        # 31 bytes at most: the station reads the host as a C string from a 32-byte field.
        host = _fixed(self.host, _HOST_LEN - 1, "host").ljust(_HOST_LEN, b"\0")
        return bytes((self.result,)) + encode_time(self.time) + host + port

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> RegisterReply:
        return cls(result=content[0], time=decode_time(content[1:7]),
                   host=_cstr(content[7:39]), port=_PORT.unpack_from(content, 39)[0],
                   **hdr)


# --- login (manual 6.2) ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Message):
    """0x0001, station -> platform (the load server)::

        +------------------------+--------------------------------+
        | software version (2)   | CRC16 of the station's params  |
        | major, minor (02 07)   | (2)                            |
        +------------------------+--------------------------------+

    Unanswered, the station sends it 10 times, then registers again.
    """

    COMMAND = CMD_LOGIN
    kind = "login"
    CONTENT_LEN = 4

    sw_version: int = 0
    param_crc: int = 0

    def content(self) -> bytes:
        try:
            return _U16.pack(self.sw_version) + _U16.pack(self.param_crc)
        except struct.error:
            raise EncodeError("software version or parameter CRC outside 16 bits") from None

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> Login:
        return cls(sw_version=_U16.unpack_from(content, 0)[0],
                   param_crc=_U16.unpack_from(content, 2)[0], **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ResultTime(Message):
    """A result or operation byte and the platform's time (6)::

        +----------------+----------+
        | result / op    | time (6) |
        +----------------+----------+
    """

    CONTENT_LEN = 1 + TIME_LEN

    result: int = RESULT_OK
    time: datetime | None = None

    def content(self) -> bytes:
        return bytes((self.result,)) + encode_time(self.time)

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> _ResultTime:
        return cls(result=content[0], time=decode_time(content[1:7]),
                   **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginReply(_ResultTime):
    """0x8001: ``result | time(6)``. Result 0x00 success; 0x02 success, update the firmware;
    0x03 success, upload hardware information; 0x10 success, update the parameters; 0xFE login
    error; 0xFF refused (the station registers again 3 minutes later)."""

    COMMAND = CMD_LOGIN | REPLY_FLAG
    kind = "login_reply"


# --- heartbeat and data (manual 6.3, 6.4) ------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Message):
    """0x0003, station -> platform::

        +-----------------+-------------------+------------------+----------+
        | work status (2) | device status (2) | sw version (2)   | time (6) |
        +-----------------+-------------------+------------------+----------+

    Work status: bit 0 GPRS link, bit 1 LAN link, bit 4 tag records NOT sent to the platform,
    bit 5 external power lost, bits 8-11 battery 0-10 (tenths; V3.2 on). Device status (V2.9 on;
    firmware before that sends its parameter CRC here): bits 0-7 GPRS signal 0-31 (99: unknown),
    bit 8 sent over GPRS, bit 9 over LAN. Time: the station's clock. Unanswered, the station
    sends it 5 times, then logs in again.
    """

    COMMAND = CMD_HEARTBEAT
    kind = "heartbeat"
    CONTENT_LEN = 6 + TIME_LEN

    work_status: int = 0
    device_status: int = 0
    sw_version: int = 0
    time: datetime | None = None

    def content(self) -> bytes:
        try:
            head = struct.pack(">HHH", self.work_status, self.device_status, self.sw_version)
        except struct.error:
            raise EncodeError("heartbeat status or version outside 16 bits") from None
        return head + encode_time(self.time)

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> Heartbeat:
        work, dev, ver = struct.unpack_from(">HHH", content)
        return cls(work_status=work, device_status=dev, sw_version=ver,
                   time=decode_time(content[6:12]), **hdr)

    @property
    def gprs(self) -> bool:
        return bool(self.work_status & 0x0001)

    @property
    def lan(self) -> bool:
        return bool(self.work_status & 0x0002)

    @property
    def tags_suppressed(self) -> bool:
        """The station is configured not to send tag records."""
        return bool(self.work_status & 0x0010)

    @property
    def power_lost(self) -> bool:
        return bool(self.work_status & 0x0020)

    @property
    def battery_tenths(self) -> int:
        return (self.work_status >> 8) & 0x0F


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReply(_ResultTime):
    """0x8003: ``operation | time(6)`` (``result`` holds the operation byte: 0x00 none, 0x06 set
    the clock to ``time``, ... see the ``OP_`` constants)."""

    COMMAND = CMD_HEARTBEAT | REPLY_FLAG
    kind = "heartbeat_reply"

    @property
    def operation(self) -> int:
        return self.result


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReport(Message):
    """0x0004, station -> platform: TLVs back to back (see :mod:`.tlv`)::

        +---------------------------+---------------------------+-----+
        | 8B 01 | 00 11 | 17 bytes  | 8B 01 | 00 11 | 17 bytes  | ... |
        +---------------------------+---------------------------+-----+

    ``records`` holds every TLV in order (tag records whose check byte fails included: they are
    reported, not read); ``trailing`` the bytes after the last whole TLV. Unanswered, the station
    sends it 5 times, then logs in again.
    """

    COMMAND = CMD_DATA
    kind = "data_report"
    MIN_CONTENT = 0  # an empty report is still a report the station waits to see answered

    records: tuple[Tlv, ...] = ()
    trailing: bytes = b""

    def content(self) -> bytes:
        return b"".join(r.encode() for r in self.records) + self.trailing

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> DataReport:
        records, trailing = parse_tlvs(content)
        return cls(records=records, trailing=trailing, **hdr)

    @property
    def tags(self) -> tuple[TagRecord, ...]:
        """The tag records whose check byte matches."""
        return tuple(r for r in self.records if isinstance(r, TagRecord) and r.check_ok)

    @property
    def bad_tags(self) -> tuple[TagRecord, ...]:
        """The tag records whose check byte does not match."""
        return tuple(r for r in self.records if isinstance(r, TagRecord) and not r.check_ok)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReply(_ResultTime):
    """0x8004: the same content as the heartbeat reply, ``operation | time(6)``."""

    COMMAND = CMD_DATA | REPLY_FLAG
    kind = "data_reply"

    @property
    def operation(self) -> int:
        return self.result


# --- firmware update and parameters (manual 6.5, 6.6): kept close to the bytes -----------------

@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareRequest(Message):
    """0x000D, station -> platform, after an update operation::

        +-----------+-----------+---------------------------------------------+
        | file type | data type | body (4)                                    |
        +-----------+-----------+---------------------------------------------+

    file type 1 host, 2 antenna firmware. data type 0 file information (body reserved), 1 file
    content (body: block size (2), block index (2)), 2 update done (body: ok flag, version (2),
    reserved).
    """

    COMMAND = CMD_FIRMWARE
    kind = "firmware_request"
    CONTENT_LEN = 6

    file_type: int = 1
    data_type: int = 0
    body: bytes = bytes(4)

    def content(self) -> bytes:
        if len(self.body) != 4:
            raise EncodeError("firmware request body must be 4 bytes")
        return bytes((self.file_type, self.data_type)) + self.body

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> FirmwareRequest:
        return cls(file_type=content[0], data_type=content[1], body=content[2:6],
                   **hdr)

    @property
    def block(self) -> tuple[int, int] | None:
        """(block size, block index) of a content request."""
        if self.data_type != 1:
            return None
        size, index = struct.unpack(">HH", self.body)
        return size, index


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareReply(Message):
    """0x800D, platform -> station: ``data type | body``: 0x01/0x03 file information (16 bytes:
    name 5, extension 3, version 2, CRC16 2, size 4), 0x02/0x04 a file block (size (2) + data),
    0x05 the update is finished (no body)."""

    COMMAND = CMD_FIRMWARE | REPLY_FLAG
    kind = "firmware_reply"

    data_type: int = 0x05
    body: bytes = b""

    def content(self) -> bytes:
        return bytes((self.data_type,)) + self.body

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> FirmwareReply:
        return cls(data_type=content[0], body=content[1:], **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsReport(Message):
    """0x000A, station -> platform: ``param type | data``: 0x02 antenna information (16), 0x10
    user configuration (182), 0x11 device status (106), 0x12 hardware information (127), 0x80
    configuration confirmed (1). See :mod:`.params` for the layouts."""

    COMMAND = CMD_PARAMS
    kind = "params_report"

    param_type: int = 0
    data: bytes = b""

    def content(self) -> bytes:
        return bytes((self.param_type,)) + self.data

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> ParamsReport:
        return cls(param_type=content[0], data=content[1:], **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsCommand(Message):
    """0x800A, platform -> station: ``param type | data``: 0x02 set antenna gains and RSSI
    thresholds (8), 0x03 tag reporting on/off (1), 0x10 write the user configuration (182), 0x80
    "the platform received your parameters" (no data)."""

    COMMAND = CMD_PARAMS | REPLY_FLAG
    kind = "params_command"

    param_type: int = 0x80
    data: bytes = b""

    def content(self) -> bytes:
        return bytes((self.param_type,)) + self.data

    @classmethod
    def parse(cls, content: bytes, **hdr: Any) -> ParamsCommand:
        return cls(param_type=content[0], data=content[1:], **hdr)


@dataclass(frozen=True, slots=True, kw_only=True)
class RawMessage(Message):
    """A packet with a valid CRC whose command is unknown, or whose content has a length this
    driver does not decode for its command: the command code and the content as sent."""

    COMMAND = -1
    kind = "raw"

    code: int = 0
    body: bytes = b""

    @property
    def command(self) -> int:
        return self.code

    def content(self) -> bytes:
        return self.body


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.COMMAND: cls
    for cls in (Register, RegisterReply, Login, LoginReply, Heartbeat, HeartbeatReply,
                DataReport, DataReply, FirmwareRequest, FirmwareReply, ParamsReport,
                ParamsCommand)
}


def message_from_packet(packet: bytes) -> Message:
    """The message in ``packet``, which the caller has checked (start flag, length, CRC).

    Never raises for a checked packet: content this driver cannot decode becomes a RawMessage.
    """
    length, command, serial, version, security, dev = HEADER.unpack_from(packet, 2)
    content = packet[2 + HEADER_LEN:2 + length]
    hdr: dict[str, Any] = {"device_id": _cstr(dev), "serial": serial, "version": version,
                              "security": security, "raw": packet}
    cls = MESSAGE_TYPES.get(command)
    if cls is not None and cls.accepts(len(content)):
        return cls.parse(content, **hdr)
    return RawMessage(code=command, body=content, **hdr)


def decode_packet(packet: bytes) -> Message:
    """Check and decode exactly one packet (for tests and tools; streams go through the framer).

    Raises :class:`DecodeError` with the framer's reason code when ``packet`` is not valid.
    """
    if packet[:2] != SOF:
        raise DecodeError("garbage", "no 55 AA start flag")
    if len(packet) < 4:
        raise DecodeError("truncated")
    length = _U16.unpack_from(packet, 2)[0]
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise DecodeError("bad_length", f"length field {length}")
    if len(packet) != 2 + length + CRC_LEN:
        raise DecodeError("truncated" if len(packet) < 2 + length + CRC_LEN else "bad_length",
                          f"{len(packet)} bytes for length field {length}")
    body = packet[2:2 + length]
    if crc16_ccitt_false(body) != _U16.unpack_from(packet, 2 + length)[0]:
        raise DecodeError("bad_checksum")
    return message_from_packet(packet)

