"""A simulated Impinj R2000 "0xA0" reader: the device side of the ``r2000`` driver, built on
the driver's own frame classes and framer.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import ClassVar

from firmware_sim.devices.base import SimDevice, SimTag
from gateway.drivers.base import StreamDecoder
from gateway.drivers.r2000.codes import (
    BROADCAST,
    CMD_FAST_SWITCH_INVENTORY,
    CMD_GET_FIRMWARE_VERSION,
    CMD_GET_OUTPUT_POWER,
    CMD_GET_WORK_ANTENNA,
    CMD_REAL_TIME_INVENTORY,
    CMD_RESET,
    CMD_SET_OUTPUT_POWER,
    CMD_SET_WORK_ANTENNA,
    ERROR_ANTENNA_MISSING,
    SUCCESS,
)
from gateway.drivers.r2000.framer import R2000Framer
from gateway.drivers.r2000.frames import (
    AntennaMissing,
    Command,
    FastSwitchSummary,
    FirmwareReply,
    InventorySummary,
    OutputPowerReply,
    R2000Frame,
    StatusReply,
    TagFrame,
    WorkAntennaReply,
    pc_for_epc,
    rssi_raw_for_dbm,
)
from gateway.drivers.r2000.protocol import MODEL_8PORT, MODELS

__all__ = ["DEVICE", "R2000Device"]

ERROR_BAD_ANTENNA = 0x47  # parameter_invalid_antenna_id_out_of_range
ERROR_BAD_POWER = 0x48  # parameter_invalid_output_power_out_of_range
#: Frequency indexes the simulated reader hops over: 43-53, 920.0-925.0 MHz in the manual's
#: table, around China's 920.5-924.5 MHz UHF RFID band (any index 0-59 decodes alike).
HOP_INDEXES = range(43, 54)
MIN_POWER_DBM, MAX_POWER_DBM = 20, 33  # the manual's range for 0x76


class R2000Device(SimDevice):
    """The reader side of the protocol, as far as the gateway uses it.

    Host commands are parsed with the driver's own framer (command direction), so they may
    arrive in any chunking; commands for another address are ignored, as the real reader
    ignores them. Answers:

    * 0x72 get firmware version: ``firmware`` (default 1.9).
    * 0x74 set work antenna: 0x10 success, or 0x47 for an antenna the reader lacks; 0x75
      reports it.
    * 0x76 set output power (one value, 20-33 dBm): 0x10 success, or 0x48; 0x77 reports it.
    * 0x89 real-time inventory: starts one round (:attr:`inventory_running` becomes True).
      The next :meth:`read_frames` renders the whole round: a tag frame per tag heard, then the
      summary (Len 0x0A ``AntID ReadRate TotalRead`` as real firmware sends it, or Len 0x08
      ``AntID TotalRead`` as the V2.2 manual documents it, by ``summary_len``), and the round
      ends; the gateway starts the next round when it has the summary. If the work antenna is
      not connected the round is a status frame 0x22 instead.
    * 0x8A fast-switch inventory: the same, over the listed antennas (ids above 3, or above 7
      on the 8-port model, are skipped); an unconnected one is reported with an
      antenna-missing frame, and the round ends with the Len 0x0B summary (TotalRead and
      the command's duration in ms, measured from the command to the round).
    * 0x70 reset: no answer; a running round is forgotten.
    * Anything else: no answer (this simulation implements only what the gateway sends).

    The work antenna is not modelled for reads: a 0x89 round reports every tag on its own
    :class:`SimTag` antenna (clamped to the reader's ports), so simulated traffic keeps the
    antenna (the vehicle's direction) the tag schedule gave it. The RSSI is the tag's
    ``rssi_dbm`` or a random -70..-40 dBm; the frequency hops over :data:`HOP_INDEXES`. The
    8-port model puts antennas 5-8 in bit 7 of the RSSI byte, as its firmware does.
    """

    driver = "r2000"
    models: ClassVar[tuple[str, ...]] = MODELS

    def __init__(self, model: str | None = None, rng: random.Random | None = None, *,
                 address: int = 0x01, firmware: tuple[int, int] = (1, 9),
                 summary_len: int = 0x0A, connected: frozenset[int] | None = None) -> None:
        super().__init__(model, rng)
        if self.model not in MODELS:
            raise ValueError(f"unknown R2000 model {self.model!r} (one of {', '.join(MODELS)})")
        if summary_len not in (0x08, 0x0A):
            raise ValueError(f"summary_len 0x{summary_len:02X}: 0x08 or 0x0A")
        self.address = address
        self.firmware = firmware
        self.summary_len = summary_len
        self.ports = 8 if self.model == MODEL_8PORT else 4
        #: 1-based antennas with an antenna plugged in (default: every port).
        self.connected = frozenset(range(1, self.ports + 1)) if connected is None else connected
        self.work_antenna = 1
        self.output_power = 30
        self._decoder = StreamDecoder(R2000Framer("command"))
        self._round: Command | None = None  # the inventory command of the running round
        self._round_started: datetime | None = None

    @property
    def inventory_running(self) -> bool:
        return self._round is not None

    # -- host -> device ----------------------------------------------------------------------

    def on_host_bytes(self, data: bytes, now: datetime) -> bytes:
        out: list[R2000Frame] = []
        for item in self._decoder.feed(data):
            if not isinstance(item, Command):
                continue  # noise on the line: the reader ignores it too
            if item.address not in (self.address, BROADCAST):
                continue
            out.extend(self._answer(item, now))
        return b"".join(f.raw for f in out)

    def _answer(self, cmd: Command, now: datetime) -> list[R2000Frame]:
        code, data = cmd.cmd, cmd.data
        if code == CMD_GET_FIRMWARE_VERSION:
            return [FirmwareReply(self.address, *self.firmware)]
        if code == CMD_SET_WORK_ANTENNA and len(data) == 1:
            if data[0] >= self.ports:
                return [StatusReply(self.address, code, ERROR_BAD_ANTENNA)]
            self.work_antenna = data[0] + 1
            return [StatusReply(self.address, code, SUCCESS)]
        if code == CMD_GET_WORK_ANTENNA:
            return [WorkAntennaReply(self.address, self.work_antenna - 1)]
        if code == CMD_SET_OUTPUT_POWER and len(data) == 1:
            if not MIN_POWER_DBM <= data[0] <= MAX_POWER_DBM:
                return [StatusReply(self.address, code, ERROR_BAD_POWER)]
            self.output_power = data[0]
            return [StatusReply(self.address, code, SUCCESS)]
        if code == CMD_GET_OUTPUT_POWER:
            return [OutputPowerReply(self.address, (self.output_power,))]
        if code == CMD_REAL_TIME_INVENTORY and len(data) == 1:
            if self.work_antenna not in self.connected:
                return [StatusReply(self.address, code, ERROR_ANTENNA_MISSING)]
            self._round, self._round_started = cmd, now
        elif code == CMD_FAST_SWITCH_INVENTORY and len(data) == 5:
            self._round, self._round_started = cmd, now
        elif code == CMD_RESET:
            self._round = None
        return []

    # -- device -> host ----------------------------------------------------------------------

    def read_frames(self, tags: list[SimTag], now: datetime) -> bytes:
        """The running round, whole, for ``tags`` (b"" when no round runs); ends the round."""
        return b"".join(f.raw for f in self.round_frames(tags, now))

    def round_frames(self, tags: list[SimTag], now: datetime) -> list[R2000Frame]:
        """The frames of the running round, as objects; ends the round."""
        cmd, started = self._round, self._round_started or now
        self._round = None
        if cmd is None:
            return []
        seconds = max((now - started).total_seconds(), 0.0)
        if cmd.cmd == CMD_FAST_SWITCH_INVENTORY:
            return self._fast_switch_round(cmd, tags, seconds)
        frames: list[R2000Frame] = [self.tag_frame(t, CMD_REAL_TIME_INVENTORY) for t in tags]
        total = len(frames)
        antenna_id = self.work_antenna - 1
        if self.summary_len == 0x08:
            frames.append(InventorySummary(self.address, cmd.cmd, antenna_id, total))
        else:
            rate = min(round(total / seconds) if seconds > 0 else total, 0xFFFF)
            frames.append(InventorySummary(self.address, cmd.cmd, antenna_id, total, rate))
        return frames

    def _fast_switch_round(self, cmd: Command, tags: list[SimTag],
                           seconds: float) -> list[R2000Frame]:
        frames: list[R2000Frame] = []
        total = 0
        for ant_id in cmd.data[:4]:
            if ant_id >= self.ports:
                continue  # "above 03 means ignore it"
            antenna = ant_id + 1
            if antenna not in self.connected:
                frames.append(AntennaMissing(self.address, ant_id))
                continue
            for tag in tags:
                if self._port(tag.antenna) == antenna:
                    frames.append(self.tag_frame(tag, CMD_FAST_SWITCH_INVENTORY))
                    total += 1
        frames.append(FastSwitchSummary(self.address, total, min(round(seconds * 1000),
                                                                 0xFFFFFFFF)))
        return frames

    def tag_frame(self, tag: SimTag, cmd: int = CMD_REAL_TIME_INVENTORY) -> TagFrame:
        """The frame this reader sends for ``tag`` (an EPC of whole 16-bit words)."""
        epc = bytes.fromhex(tag.tag_id)
        dbm = tag.rssi_dbm if tag.rssi_dbm is not None else self.rng.randint(-70, -40)
        rssi = rssi_raw_for_dbm(dbm)
        ant_id = self._port(tag.antenna) - 1
        if ant_id >= 4:  # 8-port firmware: the antenna's high bit travels in the RSSI byte
            rssi |= 0x80
        freq_ant = self.rng.choice(HOP_INDEXES) << 2 | (ant_id & 3)
        return TagFrame.build(self.address, cmd, freq_ant, pc_for_epc(epc), epc, rssi)

    def _port(self, antenna: int) -> int:
        return min(max(antenna, 1), self.ports)

    def random_tag_id(self) -> str:
        """An EPC-96 (12 bytes) starting E2, as the factory EPCs of many tags do."""
        return f"E2{self.rng.getrandbits(88):022X}"


DEVICE = R2000Device
