"""Impinj Indy R2000 "0xA0" serial protocol (README section 1; IND903 manual V2.2): UHF
readers of many brands. Frames ``A0 | Len | Address | Cmd | Data | Check``; tags are reported
in real-time inventory rounds the gateway keeps starting."""

from __future__ import annotations

from gateway.drivers.r2000.framer import R2000Framer
from gateway.drivers.r2000.frames import (
    AntennaMissing,
    Command,
    FastSwitchSummary,
    FirmwareReply,
    InventorySummary,
    OutputPowerReply,
    RawFrame,
    StatusReply,
    TagFrame,
    WorkAntennaReply,
    checksum,
)
from gateway.drivers.r2000.protocol import R2000Driver

__all__ = ["AntennaMissing", "Command", "FastSwitchSummary", "FirmwareReply",
           "InventorySummary", "OutputPowerReply", "R2000Driver", "R2000Framer", "RawFrame",
           "StatusReply", "TagFrame", "WorkAntennaReply", "checksum"]
