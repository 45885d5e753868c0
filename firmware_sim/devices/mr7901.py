"""The MR7901 base station, simulated: its packets (:class:`MR7901Device`) and its session with
the platform (:class:`StationSession`). Both pure: the runner (``firmware_sim/station.py``) owns
the sockets and the clock and passes the time in.

The session follows the manual (chapters 4 and 6)::

    connect(platform) -> 0x0008 register --0x8008 ok--> close, connect(advertised address)
      -> 0x0001 login --0x8001 ok--> online: 0x0003 heartbeat every heartbeat_s,
                                             0x0004 data report while tags are queued

One message is in flight at a time and it is answered with its serial number; the serial goes
up by one after each answered message (resends keep it). Unanswered after ``resend_s``:

* register: sent again, without end (a refused or failed registration too);
* login: sent again up to ``login_tries`` (10) sends in all, then register again (new connection
  to the platform address); a refused login (0xFF) waits ``refused_wait_s`` (3 minutes), then
  registers again;
* heartbeat and data: sent again up to ``message_tries`` (5) sends in all, then log in again on
  the same connection; the tags of an unanswered report go back to the front of the queue.

A lost connection (or a failed connect) starts over from the register after ``reconnect_s``.
The manual gives no heartbeat interval and no resend timeout: the defaults are the driver's
assumed ``HEARTBEAT_S`` and ``RESEND_S``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from random import Random

from firmware_sim.devices.base import SimDevice, SimTag
from gateway.drivers.base import Rejected, StreamDecoder
from gateway.drivers.mr7901.framer import MR7901Framer
from gateway.drivers.mr7901.frames import (
    OP_SET_TIME,
    REPLY_FLAG,
    RESULT_OK,
    RESULT_REFUSED,
    DataReply,
    DataReport,
    Heartbeat,
    HeartbeatReply,
    Login,
    LoginReply,
    Message,
    Register,
    RegisterReply,
)
from gateway.drivers.mr7901.protocol import (
    HEARTBEAT_S,
    LOGIN_TRIES,
    MESSAGE_TRIES,
    REFUSED_WAIT_S,
    RESEND_S,
)
from gateway.drivers.mr7901.tlv import TAG_TYPE_EBIKE, TagRecord

__all__ = [
    "DEFAULT_DEVICE_ID",
    "DEVICE",
    "Action",
    "Close",
    "Connect",
    "MR7901Device",
    "Phase",
    "Send",
    "StationSession",
]

DEFAULT_DEVICE_ID = "861694034205896"  # the manual's station
#: Login results that mean "logged in" (0x02, 0x03, 0x10 add a request this station ignores).
_LOGIN_OK = frozenset({RESULT_OK, 0x02, 0x03, 0x10})
#: Tag records per data report (the manual's example carries 2; the driver accepts ~390).
TAGS_PER_REPORT = 20


class MR7901Device(SimDevice):
    """The station's packets. ``on_host_bytes`` decodes what the platform sends into
    ``inbox`` (a station never answers a reply, so it returns no bytes); ``read_frames``
    renders tags as data reports, numbered with the device's own serial counter."""

    driver = "mr7901"

    def __init__(self, model: str | None = None, rng: Random | None = None, *,
                 device_id: str = DEFAULT_DEVICE_ID, sw_version: int = 0x0302,
                 station_tz: tzinfo = UTC) -> None:
        super().__init__(model, rng)
        self.device_id = device_id
        self.sw_version = sw_version
        self.station_tz = station_tz
        self.serial = 0
        self.inbox: deque[Message] = deque(maxlen=1024)
        self.rejected: Counter[str] = Counter()
        self._decoder = StreamDecoder(MR7901Framer())

    # --- SimDevice -----------------------------------------------------------------------------

    def on_host_bytes(self, data: bytes, now: datetime) -> bytes:
        for item in self._decoder.feed(data):
            if isinstance(item, Rejected):
                self.rejected[item.reason] += 1
            elif isinstance(item, Message):
                self.inbox.append(item)
        return b""

    def read_frames(self, tags: list[SimTag], now: datetime) -> bytes:
        when = self.station_time(now)
        records = [self.tag_record(t, when) for t in tags]
        out = []
        for i in range(0, len(records), TAGS_PER_REPORT):
            out.append(self.data_report(self.serial, records[i:i + TAGS_PER_REPORT]).encode())
            self.serial = (self.serial + 1) & 0xFFFFFFFF
        return b"".join(out)

    def random_tag_id(self) -> str:
        return f"{self.rng.getrandbits(32):08X}"

    # --- packets -------------------------------------------------------------------------------

    def take_inbox(self) -> list[Message]:
        out = list(self.inbox)
        self.inbox.clear()
        return out

    def station_time(self, now: datetime) -> datetime:
        """The station's naive wall clock: an aware ``now`` shown in ``station_tz``."""
        if now.tzinfo is not None:
            now = now.astimezone(self.station_tz).replace(tzinfo=None)
        return now.replace(microsecond=0)

    def tag_record(self, tag: SimTag, when: datetime | None) -> TagRecord:
        rssi = tag.rssi_dbm if tag.rssi_dbm is not None else self.rng.randint(-90, -45)
        return TagRecord.make(
            tag.tag_id, tag_type=TAG_TYPE_EBIKE if tag.tag_type is None else tag.tag_type,
            antenna=tag.antenna, in_range=tag.in_range, low_battery=tag.low_battery,
            key=tag.key, rssi_dbm=rssi, time=when)

    def register(self, serial: int) -> Register:
        # Registration code: derived from the device id by an undisclosed algorithm; the
        # manual's example value stands in.
        return Register(device_id=self.device_id, serial=serial, device_type=0x01,
                        device_model=0x01, reg_code=bytes.fromhex("78563412"))

    def login(self, serial: int) -> Login:
        return Login(device_id=self.device_id, serial=serial, sw_version=self.sw_version,
                     param_crc=0)

    def heartbeat(self, serial: int, when: datetime | None) -> Heartbeat:
        # LAN link, tags reported, mains power, battery 10/10; sent over LAN.
        return Heartbeat(device_id=self.device_id, serial=serial, work_status=0x0A02,
                         device_status=0x0200, sw_version=self.sw_version, time=when)

    def data_report(self, serial: int, records: Sequence[TagRecord]) -> DataReport:
        return DataReport(device_id=self.device_id, serial=serial, records=tuple(records))


# --- the session ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    """Write ``message.encode()`` on the current connection."""

    message: Message

    @property
    def data(self) -> bytes:
        return self.message.encode()


@dataclass(frozen=True, slots=True)
class Connect:
    """Close the current connection (if any) and dial ``address``; then call
    :meth:`StationSession.connected` or :meth:`StationSession.connect_failed`."""

    address: tuple[str, int]


@dataclass(frozen=True, slots=True)
class Close:
    """Close the current connection."""

    reason: str


Action = Send | Connect | Close


class Phase(StrEnum):
    CONNECTING = "connecting"  # a Connect is out; waiting for connected() / connect_failed()
    REGISTERING = "registering"
    LOGGING_IN = "logging_in"
    ONLINE = "online"
    WAITING = "waiting"  # disconnected until ``wake_at``, then registers again


class StationSession:
    """The station's side of the conversation. Every method takes ``now`` (the station's own
    clock, naive) and returns the actions for the runner, in order."""

    def __init__(self, device: MR7901Device, platform: tuple[str, int], *,
                 heartbeat_s: float = HEARTBEAT_S, resend_s: float = RESEND_S,
                 reconnect_s: float = 2.0, login_tries: int = LOGIN_TRIES,
                 message_tries: int = MESSAGE_TRIES, refused_wait_s: float = REFUSED_WAIT_S,
                 tags_per_report: int = TAGS_PER_REPORT, queue_limit: int = 100_000) -> None:
        if min(heartbeat_s, resend_s) <= 0 or reconnect_s < 0 or refused_wait_s < 0:
            raise ValueError("session intervals must be positive")
        if min(login_tries, message_tries, tags_per_report, queue_limit) < 1:
            raise ValueError("tries, tags_per_report and queue_limit must be at least 1")
        self.device = device
        self.platform = platform
        self.heartbeat = timedelta(seconds=heartbeat_s)
        self.resend = timedelta(seconds=resend_s)
        self.reconnect = timedelta(seconds=reconnect_s)
        self.refused_wait = timedelta(seconds=refused_wait_s)
        self.login_tries = login_tries
        self.message_tries = message_tries
        self.tags_per_report = tags_per_report
        self.queue_limit = queue_limit

        self.phase = Phase.WAITING
        self.serial = 0
        #: Where the register reply told the station to log in (None before that).
        self.login_address: tuple[str, int] | None = None
        #: Added to ``now`` for the times the station writes (set by an 0x06 operation).
        self.clock_offset = timedelta(0)
        self.stats: Counter[str] = Counter()
        self.queue: deque[TagRecord] = deque()
        self._dial_login = False  # the pending Connect goes to the login address
        self._inflight: Message | None = None
        self._sent_at: datetime | None = None
        self._tries = 0
        self._wake_at: datetime | None = None
        self._next_heartbeat: datetime | None = None

    # --- inputs from the runner ----------------------------------------------------------------

    def start(self, now: datetime) -> list[Action]:
        """Power on: dial the platform to register."""
        return self._dial(register=True)

    def connected(self, now: datetime) -> list[Action]:
        self.stats["connections"] += 1
        if self._dial_login:
            self.phase = Phase.LOGGING_IN
            return self._send(self.device.login(self.serial), now)
        self.phase = Phase.REGISTERING
        return self._send(self.device.register(self.serial), now)

    def connect_failed(self, now: datetime) -> list[Action]:
        self.stats["connect_failures"] += 1
        return self._wait(now, self.reconnect)

    def connection_lost(self, now: datetime) -> list[Action]:
        self.stats["disconnects"] += 1
        return self._wait(now, self.reconnect)

    def on_bytes(self, data: bytes, now: datetime) -> list[Action]:
        self.device.on_host_bytes(data, now)
        out: list[Action] = []
        for msg in self.device.take_inbox():
            out += self._on_message(msg, now)
        return out

    def queue_tags(self, tags: Sequence[SimTag], now: datetime) -> list[Action]:
        """Tags heard at ``now``: queued (the station buffers while offline) and sent."""
        when = self._clock(now)
        for tag in tags:
            self.queue.append(self.device.tag_record(tag, when))
        while len(self.queue) > self.queue_limit:
            self.queue.popleft()
            self.stats["tags_dropped"] += 1
        return self._pump(now)

    def tick(self, now: datetime) -> list[Action]:
        """Timers: resends, give-ups, heartbeats, the end of a wait."""
        if self.phase is Phase.WAITING:
            if self._wake_at is not None and now >= self._wake_at:
                return self._dial(register=True)
            return []
        if self._inflight is not None and self._sent_at is not None \
                and now >= self._sent_at + self.resend:
            return self._unanswered(now)
        return self._pump(now)

    def next_deadline(self) -> datetime | None:
        """When :meth:`tick` has something to do next (None: only on input)."""
        if self.phase is Phase.WAITING:
            return self._wake_at
        if self._inflight is not None and self._sent_at is not None:
            return self._sent_at + self.resend
        if self.phase is Phase.ONLINE:
            return self._next_heartbeat
        return None

    @property
    def in_flight(self) -> Message | None:
        return self._inflight

    # --- internals -----------------------------------------------------------------------------

    def _clock(self, now: datetime) -> datetime:
        return (now + self.clock_offset).replace(microsecond=0)

    def _dial(self, *, register: bool) -> list[Action]:
        self._clear_inflight()
        self.phase = Phase.CONNECTING
        self._dial_login = not register
        address = self.platform if register or self.login_address is None \
            else self.login_address
        return [Connect(address)]

    def _wait(self, now: datetime, delay: timedelta) -> list[Action]:
        self._clear_inflight()
        self.phase = Phase.WAITING
        self._wake_at = now + delay
        return [Close("wait")]

    def _clear_inflight(self) -> None:
        """Forget the message in flight; a data report's tags go back to the queue's front."""
        if isinstance(self._inflight, DataReport):
            self.queue.extendleft(reversed([r for r in self._inflight.records
                                            if isinstance(r, TagRecord)]))
        self._inflight = None
        self._sent_at = None
        self._tries = 0

    def _send(self, msg: Message, now: datetime, *, tries: int = 1) -> list[Action]:
        self._inflight = msg
        self._sent_at = now
        self._tries = tries
        self.stats[f"{msg.kind}_sent"] += 1
        if tries > 1:
            self.stats["resends"] += 1
        return [Send(msg)]

    def _unanswered(self, now: datetime) -> list[Action]:
        msg = self._inflight
        assert msg is not None
        if isinstance(msg, Register):
            return self._send(msg, now, tries=self._tries + 1)
        if isinstance(msg, Login):
            if self._tries < self.login_tries:
                return self._send(msg, now, tries=self._tries + 1)
            self.stats["reregisters"] += 1
            return self._dial(register=True)
        if self._tries < self.message_tries:
            return self._send(msg, now, tries=self._tries + 1)
        self.stats["relogins"] += 1
        self._clear_inflight()
        self.phase = Phase.LOGGING_IN
        return self._send(self.device.login(self.serial), now)

    def _pump(self, now: datetime) -> list[Action]:
        """Online and idle: send queued tags, else a heartbeat when one is due."""
        if self.phase is not Phase.ONLINE or self._inflight is not None:
            return []
        if self.queue:
            n = min(self.tags_per_report, len(self.queue))
            records = [self.queue.popleft() for _ in range(n)]
            return self._send(self.device.data_report(self.serial, records), now)
        if self._next_heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat
            return self._send(self.device.heartbeat(self.serial, self._clock(now)), now)
        return []

    def _on_message(self, msg: Message, now: datetime) -> list[Action]:
        sent = self._inflight
        if sent is None or msg.command != sent.command | REPLY_FLAG or msg.serial != sent.serial:
            self.stats["stray_replies"] += 1
            return []
        if isinstance(msg, RegisterReply):
            if msg.result != RESULT_OK:
                self.stats["register_refused"] += 1
                return []  # keep it in flight: the resend timer registers again
            self._answered()
            self.login_address = (msg.host, msg.port)
            return [Close("redirect"), *self._dial(register=False)]
        if isinstance(msg, LoginReply):
            if msg.result == RESULT_REFUSED:
                self.stats["login_refused"] += 1
                return self._wait(now, self.refused_wait)
            if msg.result not in _LOGIN_OK:
                self.stats["login_errors"] += 1
                return []  # an error counts as unanswered: the timer resends
            self._answered()
            self.phase = Phase.ONLINE
            self._next_heartbeat = now  # first heartbeat at once: the platform sees the status
            return self._pump(now)
        if isinstance(msg, HeartbeatReply | DataReply):
            if isinstance(sent, DataReport):
                self.stats["tags_acked"] += sum(isinstance(r, TagRecord) for r in sent.records)
            if msg.operation == OP_SET_TIME and msg.time is not None:
                self.clock_offset = msg.time - now.replace(microsecond=0)
                self.stats["clock_set"] += 1
            self._answered()
            return self._pump(now)
        self._answered()  # any other reply with our command and serial
        return self._pump(now)

    def _answered(self) -> None:
        self.stats["answered"] += 1
        self._inflight = None
        self._sent_at = None
        self._tries = 0
        self.serial = (self.serial + 1) & 0xFFFFFFFF


DEVICE = MR7901Device
