"""Finding Chafon frames in a byte stream that has no header byte to resync on.

A frame start is recognised by plausibility alone (README section 2)::

    Len (4-96) | Adr (the configured address, or 0xFF) | Cmd (a known code) | ... | CRC(2)

A candidate that passes those three checks is held until its Len + 1 bytes are in, then its CRC
decides. On a bad CRC exactly ONE byte is dropped and the scan goes on from the next byte, so a
corrupted Len can never swallow the good frames behind it. Bytes that cannot start a candidate
are dropped as ``garbage`` in one run (a compiled regular expression finds the next candidate,
so garbage is skipped at C speed rather than byte by byte in Python).

One more rule keeps a stray byte from stalling the link. A Chafon reader speaks only when asked:
after the last frame of an inventory round it waits for the next command, which the gateway
sends only once it has decoded that frame. If stray bytes before that frame look like a
candidate with a large Len, the framer would wait for bytes that never come. So when the
candidate at the front is incomplete but a complete, CRC-valid frame starts later in the
buffered bytes, the bytes before that frame are dropped as garbage and the frame comes out
(any intact frame between them would itself be complete and found first). The price: a real
frame still arriving whose data hold a CRC-valid frame image (a crafted EPC) can lose its head;
the next round, chunked differently, reads it.

Reasons reported: ``garbage`` (no frame start here), ``bad_checksum`` (one byte dropped),
``bad_layout`` (a CRC-valid reply whose data do not fit its reCmd and status: dropped whole),
``truncated`` (a frame prefix at the end of input).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from gateway.drivers.base import DecodeItem, Framer, Rejected
from gateway.drivers.chafon.crc import crc16_mcrf4xx
from gateway.drivers.chafon.frames import (
    BROADCAST,
    KNOWN_COMMANDS,
    MAX_LEN,
    MIN_LEN,
    MODELS,
    parse_command,
    parse_reply,
)

__all__ = ["ChafonFramer", "Direction"]

#: Which side's frames the stream carries: ``reply`` on the gateway (frames from the reader;
#: commands seen there are echoes), ``command`` on a simulated reader (frames from the host).
Direction = Literal["reply", "command"]


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(b"\\x%02x" % v for v in sorted(values)) + b"]"


def _table(values: Iterable[int]) -> bytes:
    allowed = set(values)
    return bytes(1 if i in allowed else 0 for i in range(256))


class ChafonFramer(Framer):
    """Frames of one Chafon stream.

    ``address``: the reader address to accept (0xFF, the default, accepts any address; frames
    sent to or from 0xFF are always accepted). ``echoes``: exact command frames this side
    sends; on the gateway side a frame equal to one of them is read as a :class:`Command` even
    when its length would allow a reply (a command with data has no status byte, but its bytes
    do not say so).
    """

    max_frame_len = MAX_LEN + 1

    def __init__(self, model: str = MODELS[0], address: int = BROADCAST,
                 direction: Direction = "reply", echoes: Iterable[bytes] = ()) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown Chafon model {model!r}")
        self.model = model
        self.address = address
        self.direction = direction
        self.echoes = frozenset(echoes)
        addresses = range(256) if address == BROADCAST else (address, BROADCAST)
        lengths = range(MIN_LEN, MAX_LEN + 1)
        self._len_ok = _table(lengths)
        self._adr_ok = _table(addresses)
        self._cmd_ok = _table(KNOWN_COMMANDS)
        self._search = re.compile(
            _byte_class(lengths) + _byte_class(addresses) + _byte_class(KNOWN_COMMANDS),
            re.DOTALL,
        ).search

    def decode(self, buf: bytes, pos: int = 0) -> tuple[int, DecodeItem | None]:
        end = len(buf)
        if pos + 3 <= end and (self._len_ok[buf[pos]] and self._adr_ok[buf[pos + 1]]
                               and self._cmd_ok[buf[pos + 2]]):
            start = pos  # the common case: a frame right here, no regex needed
        else:
            m = self._search(buf, pos)
            if m is None:
                cut = end - self._tail_prefix(buf, pos, end)
                if cut > pos:
                    return cut - pos, Rejected("garbage", buf[pos:cut])
                return 0, None
            start = m.start()
            if start != pos:
                return start - pos, Rejected("garbage", buf[pos:start])
        length = buf[pos]
        stop = pos + length + 1
        if stop > end:
            q = self._complete_after(buf, pos, end)
            if q:
                return q - pos, Rejected("garbage", buf[pos:q])
            return 0, None
        frame = buf[pos:stop]
        if crc16_mcrf4xx(frame[:-2]) != frame[-2] | (frame[-1] << 8):
            return 1, Rejected("bad_checksum", frame[:1])
        if self.direction == "command" or length == MIN_LEN or frame in self.echoes:
            # Len 4 leaves no room for a status byte: only a command is that short.
            return stop - pos, parse_command(frame)
        item = parse_reply(frame, self.model)
        if item is None:
            return stop - pos, Rejected("bad_layout", frame)
        return stop - pos, item

    def _tail_prefix(self, buf: bytes, pos: int, end: int) -> int:
        """How many of the last bytes (at most 2, none before ``pos``) could still begin a
        candidate once more bytes arrive."""
        if end - 2 >= pos and self._len_ok[buf[end - 2]] and self._adr_ok[buf[end - 1]]:
            return 2
        if end - 1 >= pos and self._len_ok[buf[end - 1]]:
            return 1
        return 0

    def _complete_after(self, buf: bytes, pos: int, end: int) -> int:
        """The start of the first complete, CRC-valid candidate after ``pos``, or 0."""
        search = self._search
        m = search(buf, pos + 1, end)
        while m is not None:
            q = m.start()
            stop = q + buf[q] + 1
            if stop <= end:
                frame = buf[q:stop]
                if crc16_mcrf4xx(frame[:-2]) == frame[-2] | (frame[-1] << 8):
                    return q
            m = search(buf, q + 1, end)
        return 0
