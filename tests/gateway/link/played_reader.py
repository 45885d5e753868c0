"""A Chafon UHFReader288 played by the serial-link tests on real I/O (a pseudo-terminal
master or a socket), with its frames built here by hand: a CRC-16/MCRF4XX written from the
README's definition and checked against the README's known answers, never the driver's own
encoder. Also the pty behind a by-id symlink."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any

import pytest

from gateway.drivers import make_driver
from gateway.link.serial_link import SerialLink
from tests.support.links import Reads

LOGGER = "gateway.link.serial_link"


# -- Chafon frames, by hand -------------------------------------------------------------------

def crc_mcrf4xx(data: bytes) -> int:
    """README: preset 0xFFFF, reflected polynomial 0x8408, no final XOR."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc_mcrf4xx(body)
    return body + bytes((crc & 0xFF, crc >> 8))  # LSB first


# Host -> reader, broadcast address 0xFF.
GET_INFO = bytes.fromhex("04FF211995")  # README's "get reader info" command, verbatim
# UHFReader288 inventory: Len 6 = Data(2) + 4; Data = QValue 4, Session 0.
INVENTORY = with_crc(bytes.fromhex("06FF010400"))

EPC_A = bytes.fromhex("E200301666130121155074EF")
EPC_B = bytes.fromhex("E28011606000020000ABCDEF")


def inventory_reply(epc: bytes, antenna_mask: int = 0x01, rssi: int = 0x60) -> bytes:
    """UHFReader288 reply: Len | Adr | 01 | Status 01 (round done) | Ant | Num | EPCLen | EPC |
    RSSI | CRC; Len = len(Data) + 5 with Data = Ant..RSSI."""
    data = bytes((antenna_mask, 1, len(epc))) + epc + bytes((rssi,))
    return with_crc(bytes((len(data) + 5, 0x00, 0x01, 0x01)) + data)


# Reader information reply: version 3.1, type, tr_type, dmaxfre, dminfre, power, scan time.
INFO_REPLY = with_crc(bytes((8 + 5, 0x00, 0x21, 0x00, 3, 1, 0x0F, 0x02, 0x4E, 0x00, 30, 10)))


# -- a reader played by the test ---------------------------------------------------------------

class PlayedReader:
    """Plays a Chafon reader on a file descriptor (a pty master or a socket).

    ``streaming``: answer each inventory with a tag (after ``round_s``, like a scan time);
    ``answer_info``: answer "get reader info"; ``echo``: send every command back (RS-485).
    """

    def __init__(self, fd: int, epc: bytes = EPC_A, *, streaming: bool = True,
                 answer_info: bool = True, echo: bool = False, round_s: float = 0.02) -> None:
        self.fd = fd
        self.epc = epc
        self.streaming = streaming
        self.answer_info = answer_info
        self.echo = echo
        self.round_s = round_s
        self.inventories = 0
        self.infos = 0
        self.lose_next = 0  # inventories to leave unanswered (their reply lost on the line)
        self.sent_tags = 0
        self._stop = threading.Event()
        self._buf = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.fd, 4096)
            except OSError:
                # A pty master reads EIO while nobody holds the slave open (the link is
                # between two connections): wait for the next open.
                time.sleep(0.02)
                continue
            if not data:
                time.sleep(0.02)
                continue
            self._buf += data
            self._serve()

    def _serve(self) -> None:
        while True:
            hits = [(self._buf.find(cmd), cmd) for cmd in (INVENTORY, GET_INFO)]
            hits = [(i, cmd) for i, cmd in hits if i >= 0]
            if not hits:
                self._buf = self._buf[-8:]
                return
            i, cmd = min(hits)
            self._buf = self._buf[i + len(cmd):]
            if self.echo:
                self._send(cmd)
            if cmd == INVENTORY:
                self.inventories += 1
                if self.lose_next:
                    self.lose_next -= 1
                elif self.streaming:
                    time.sleep(self.round_s)
                    self._send(inventory_reply(self.epc))
                    self.sent_tags += 1
            else:
                self.infos += 1
                if self.answer_info:
                    self._send(INFO_REPLY)


class Pty:
    """A pseudo-terminal whose slave is reached through a symlink (as /dev/serial/by-id/)."""

    def __init__(self, link: Path) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.link = link
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(self.path)

    def vanish(self) -> None:
        """The USB adapter is pulled: the device node and its by-id link disappear."""
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        os.close(self.master)


def chafon_link(url: str, sink: Reads, **kw: Any) -> SerialLink:
    opts: dict[str, Any] = dict(watchdog_s=1.0, ping_every_s=0.3, backoff_initial_s=0.05,
                                  backoff_max_s=0.2)
    opts.update(kw)
    return SerialLink(url, lambda: make_driver("chafon"), baud=57600, reader_id="rd-17",
                      sink=sink, **opts)


def warnings(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(1 for r in caplog.records
               if r.name == LOGGER and r.levelno >= logging.WARNING and r.getMessage() == name)
