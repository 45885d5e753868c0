"""The EM4100 ASCII reader driver (RDM6300 and similar): no commands; the reader repeats a
card's frame for as long as the card is in its field."""

from __future__ import annotations

from typing import ClassVar

from gateway.drivers.base import Driver, Frame
from gateway.drivers.em4100.framer import EM4100Framer
from gateway.drivers.em4100.frames import EM4100Frame
from pak.types import TagRead

__all__ = ["DRIVER", "EM4100Driver"]


class EM4100Driver(Driver):
    """125 kHz EM4100 readers that print each card as STX, 12 hex digits, [CR LF], ETX.
    Frames with and without CR LF are both accepted whatever the model."""

    name = "em4100"
    models: ClassVar[tuple[str, ...]] = ("default",)
    default_baud = 9600
    # The reader re-sends a present card several times a second: a 1.5 s gap means it left.
    default_exit_after = 1.5

    def framer(self) -> EM4100Framer:
        return EM4100Framer()

    def reads(self, frame: Frame) -> list[TagRead]:
        if not isinstance(frame, EM4100Frame):
            return []
        return [TagRead("em4100", frame.tag_id, "em4100", frame.raw)]

    def frame_json(self, frame: Frame) -> dict[str, object]:
        out: dict[str, object] = {"frame": frame.kind}
        if isinstance(frame, EM4100Frame):
            out.update(tag_id=frame.tag_id, version=frame.version, card_id=frame.card_id,
                       crlf=frame.crlf)
        out["raw"] = frame.raw.hex().upper()
        return out


DRIVER = EM4100Driver
