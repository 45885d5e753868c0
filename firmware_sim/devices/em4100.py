"""A simulated EM4100 ASCII reader (RDM6300 and similar): the device side of ``em4100``.

It has no commands: it prints a frame for every card in its field, on its own, as often as the
runner calls :meth:`EM4100Device.read_frames`. Model ``rdm6300`` sends the plain 14-byte frame,
``crlf`` the readers that put CR LF before the ETX.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import ClassVar

from firmware_sim.devices.base import SimDevice, SimTag
from gateway.drivers.em4100.frames import EM4100Frame

__all__ = ["DEVICE", "EM4100Device"]


class EM4100Device(SimDevice):
    driver = "em4100"
    models: ClassVar[tuple[str, ...]] = ("rdm6300", "crlf")

    def __init__(self, model: str | None = None, rng: random.Random | None = None) -> None:
        super().__init__(model, rng)
        if self.model not in self.models:
            raise ValueError(f"unknown EM4100 reader model {self.model!r}")
        self.crlf = self.model == "crlf"

    def on_host_bytes(self, data: bytes, now: datetime) -> bytes:
        return b""  # the reader listens to nothing

    def read_frames(self, tags: list[SimTag], now: datetime) -> bytes:
        return b"".join(EM4100Frame(t.tag_id.upper(), self.crlf).raw for t in tags)

    def random_tag_id(self) -> str:
        return f"{self.rng.getrandbits(40):010X}"


DEVICE = EM4100Device
