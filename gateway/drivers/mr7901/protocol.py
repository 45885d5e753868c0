"""The MR7901 driver: what the gateway's TCP server owes a station, and its tag reads.

The station is the TCP client (manual chapter 4). It registers with the platform (0x0008), is
told which address to log in at (0x8008), opens a new connection there, logs in (0x0001), then
sends heartbeats (0x0003) and data reports (0x0004). Every message must be answered, with the
serial number of the message it answers; an unanswered one is sent again (register: without end;
login: 10 times, then it registers again; heartbeat and data: 5 times, then it logs in again).
The gateway plays both the registration and the login server: its 0x8008 names the address it
listens on (``advertise``).

Bad tag check bytes. A data report whose CRC matches but which holds a tag record whose check
byte does not is an intact packet with one bad record. The framer yields the packet (it must be
answered: resending would not repair the tag's radio read); :meth:`MR7901Driver.reads` skips the
bad record, and :meth:`MR7901Driver.rejections` returns one ``Rejected("bad_tag_check", <the
21 TLV bytes>)`` for it, which callers count and log exactly like the framer's rejections. The
same method reports ``bad_tlv`` for a 0x8B01 TLV of the wrong length and for bytes after the
last whole TLV.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from gateway.drivers.base import DecodeItem, Driver, Frame, Rejected
from gateway.drivers.mr7901.errors import EncodeError
from gateway.drivers.mr7901.framer import MR7901Framer
from gateway.drivers.mr7901.frames import (
    CMD_DATA,
    CMD_HEARTBEAT,
    CMD_LOGIN,
    CMD_PARAMS,
    CMD_REGISTER,
    OP_NONE,
    OP_SET_TIME,
    RESULT_OK,
    RESULT_REFUSED,
    DataReply,
    DataReport,
    Heartbeat,
    HeartbeatReply,
    LoginReply,
    Message,
    ParamsCommand,
    ParamsReport,
    RegisterReply,
)
from gateway.drivers.mr7901.params import PARAM_CONFIRM
from gateway.drivers.mr7901.timefield import station_clock
from gateway.drivers.mr7901.tlv import TYPE_TAG, RawTlv, TagRecord
from pak.errors import ConfigError
from pak.types import TagRead

__all__ = [
    "DRIVER",
    "HEARTBEAT_S",
    "LOGIN_TRIES",
    "MESSAGE_TRIES",
    "REFUSED_WAIT_S",
    "RESEND_S",
    "MR7901Driver",
]

# Session facts. The tries and the 3-minute wait are the manual's (6.2, 6.3, 6.4); it gives no
# heartbeat interval and no resend timeout, so those two are this project's assumptions (the
# simulator's defaults, and what a server's silence watchdog can be sized from).
LOGIN_TRIES = 10  # login sends before the station registers again
MESSAGE_TRIES = 5  # heartbeat / data sends before the station logs in again
REFUSED_WAIT_S = 180.0  # after a refused login (0x8001 result 0xFF) before registering again
HEARTBEAT_S = 30.0  # assumed
RESEND_S = 10.0  # assumed


class MR7901Driver(Driver):
    """One instance per station connection.

    ``advertise``: the (host, port) the 0x8008 register reply sends the station to (the
    gateway's own listening address, as the station can reach it); without it a register is
    refused (result 0xFF), since the driver cannot know where it listens. ``station_tz``: the
    zone of the station's clock (reply times are sent in it; reads keep the station's time
    naive, as sent). ``clock_sync_after``: when set, a heartbeat whose time is off from the
    gateway's by more than this many seconds (or unset) is answered with operation 0x06, which
    sets the station's clock; leave it None on a gateway whose own clock is not trusted.
    """

    name: ClassVar[str] = "mr7901"
    transport = "tcp-server"
    # The station reports a tag when it arrives and when it leaves (after its de-dup window,
    # 180 s in the manual's configuration example), and re-reports a tag that stays every
    # "stay report" interval (60 s at the least; off by default). 200 s of silence therefore
    # outlasts both: the sighting normally ends on the station's own out-of-range report, and
    # the silence rule only catches a lost one.
    default_exit_after: ClassVar[float] = 200.0

    def __init__(self, model: str | None = None, *,
                 advertise: tuple[str, int] | None = None,
                 station_tz: tzinfo = UTC,
                 clock_sync_after: float | None = None) -> None:
        super().__init__(model)
        if advertise is not None:
            host, port = advertise
            if not host or not 0 < port <= 0xFFFF:
                raise ConfigError(f"advertise: {host!r}:{port} needs a host and a port 1-65535")
            try:
                RegisterReply(host=host, port=port).content()
            except EncodeError as exc:
                raise ConfigError(f"advertise: {exc} (the 0x8008 field holds 31 bytes)") from None
        if clock_sync_after is not None and clock_sync_after <= 0:
            raise ConfigError("clock_sync_after must be positive")
        self.advertise = advertise
        self.station_tz = station_tz
        self.clock_sync_after = clock_sync_after

    def framer(self) -> MR7901Framer:
        return MR7901Framer()

    # --- reads ---------------------------------------------------------------------------------

    def reads(self, frame: Frame) -> list[TagRead]:
        """One TagRead per 0x8B01 record whose check byte matches, in the report's order."""
        if not isinstance(frame, DataReport):
            return []
        return [self._read(rec, frame.raw) for rec in frame.tags]

    @staticmethod
    def _read(rec: TagRecord, raw: bytes) -> TagRead:
        return TagRead(
            driver="mr7901",
            tag_id=rec.tag_hex,
            tag_kind="active",
            raw=raw,
            tag_type=rec.tag_type,
            antenna=rec.antenna,
            rssi_dbm=float(rec.rssi_dbm),
            rssi_raw=rec.rssi_raw,
            reader_time=rec.time,
            low_battery=rec.low_battery,
            key=rec.key,
            in_range=rec.in_range,
        )

    def rejections(self, frame: Frame) -> list[Rejected]:
        """What inside an intact packet could not be read: ``bad_tag_check`` per tag record
        whose check byte fails, ``bad_tlv`` per malformed 0x8B01 TLV and for trailing bytes."""
        if not isinstance(frame, DataReport):
            return []
        out: list[Rejected] = []
        for rec in frame.records:
            if isinstance(rec, TagRecord):
                if not rec.check_ok:
                    out.append(Rejected("bad_tag_check", rec.raw or rec.encode()))
            elif rec.type == TYPE_TAG:
                out.append(Rejected("bad_tlv", rec.encode()))
        if frame.trailing:
            out.append(Rejected("bad_tlv", frame.trailing))
        return out

    # --- session -------------------------------------------------------------------------------

    @staticmethod
    def device_id(frame: DecodeItem) -> str | None:
        """The station's device id in a packet's header (the reader id and the allowlist key),
        or None for anything that is not a packet."""
        return frame.device_id if isinstance(frame, Message) else None

    def replies(self, frame: Frame, now: datetime) -> list[bytes]:
        """The answer each station message is owed, with its serial number, carrying ``now``
        (the gateway's UTC clock) as the station's local time. Dispatched on the command code,
        so a message whose content this driver does not decode is still answered. Nothing for
        replies, firmware requests (this platform never asks for an update) and unknown
        commands."""
        if not isinstance(frame, Message) or frame.is_reply:
            return []
        t = station_clock(now, self.station_tz)
        hdr: dict[str, Any] = {"device_id": frame.device_id, "serial": frame.serial,
                               "version": frame.version}
        cmd = frame.command
        reply: Message
        if cmd == CMD_REGISTER:
            if self.advertise is None:
                reply = RegisterReply(result=RESULT_REFUSED, time=t, **hdr)
            else:
                host, port = self.advertise
                reply = RegisterReply(result=RESULT_OK, time=t, host=host, port=port, **hdr)
        elif cmd == CMD_LOGIN:
            reply = LoginReply(result=RESULT_OK, time=t, **hdr)
        elif cmd == CMD_HEARTBEAT:
            reply = HeartbeatReply(result=self._heartbeat_op(frame, t), time=t, **hdr)
        elif cmd == CMD_DATA:
            reply = DataReply(result=OP_NONE, time=t, **hdr)
        elif cmd == CMD_PARAMS:
            if isinstance(frame, ParamsReport) and frame.param_type == PARAM_CONFIRM:
                return []  # the station confirms our parameters and restarts at once
            reply = ParamsCommand(param_type=PARAM_CONFIRM, **hdr)
        else:
            return []
        return [reply.encode()]

    def refusal(self, frame: Frame, now: datetime) -> list[bytes]:
        """Replies refusing a station (not on the allowlist): result 0xFF to a register or a
        login (after a refused login the station waits 3 minutes, then registers again).
        Nothing for other messages: a server should then close the connection."""
        if not isinstance(frame, Message) or frame.is_reply:
            return []
        t = station_clock(now, self.station_tz)
        hdr: dict[str, Any] = {"device_id": frame.device_id, "serial": frame.serial,
                               "version": frame.version}
        if frame.command == CMD_REGISTER:
            return [RegisterReply(result=RESULT_REFUSED, time=t, **hdr).encode()]
        if frame.command == CMD_LOGIN:
            return [LoginReply(result=RESULT_REFUSED, time=t, **hdr).encode()]
        return []

    def _heartbeat_op(self, frame: Message, t: datetime | None) -> int:
        if self.clock_sync_after is None or t is None or not isinstance(frame, Heartbeat):
            return OP_NONE
        if frame.time is None or abs((frame.time - t).total_seconds()) > self.clock_sync_after:
            return OP_SET_TIME
        return OP_NONE

    # --- tools ---------------------------------------------------------------------------------

    def frame_json(self, frame: Frame) -> dict[str, object]:
        """``pak decode --all``: the message's fields, bytes as hex, times ISO 8601."""
        out: dict[str, object] = {"frame": frame.kind}
        if isinstance(frame, Message):
            out["command"] = f"0x{frame.command:04X}"
            out.update(frame.header_fields())
            for name in frame.__dataclass_fields__:
                if name in out or name == "raw":
                    continue
                out[name] = _jsonable(getattr(frame, name))
            if isinstance(frame, DataReport):
                out["bad_tags"] = len(frame.bad_tags)
        out["raw"] = frame.raw.hex().upper()
        return out


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, TagRecord):
        return {"tag_id": value.tag_hex, "tag_type": value.tag_type, "channel": value.channel,
                "check_ok": value.check_ok, "status": value.status, "rssi_dbm": value.rssi_dbm,
                "time": _jsonable(value.time), "raw": _jsonable(value.raw or value.encode())}
    if isinstance(value, RawTlv):
        return {"type": f"0x{value.type:04X}", "value": value.value.hex().upper()}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


DRIVER = MR7901Driver
