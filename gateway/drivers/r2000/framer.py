"""Finding R2000 frames in a byte stream: resync on 0xA0, validate Len, verify the checksum,
dispatch on (Cmd, Len).

::

    A0 | Len | Address | Cmd | Data... | Check        frame = Len + 2 bytes, Len 3..255

Rules, in the order :meth:`R2000Framer.decode` applies them at the front of the buffer:

1. Bytes before the next 0xA0 cannot start a frame: dropped as ``garbage`` in one run.
2. Len below 3 cannot be a frame: ``bad_length``; a complete frame whose bytes do not sum to 0
   mod 256: ``bad_checksum``. Either way only the bytes up to the *next* 0xA0 are dropped, and
   the scan starts again there, so a corrupted Len never swallows the good frames behind it and
   an 0xA0 inside an EPC is tried (and refused) as a frame start without losing anything.
3. A complete, checksum-valid frame comes out: a tag frame when its command is 0x89/0x8A/0x8B
   and its PC announces exactly the EPC length Len leaves room for; otherwise whatever
   :func:`~.frames.parse_reply` makes of (Cmd, Len); a frame equal to one of our own commands
   is a :class:`~.frames.Command` (an RS-485 echo). Unknown commands come out as ``raw``.
4. An incomplete frame whose head is not plausible (a stray 0xA0 followed by noise, or a
   corrupted Len) is dropped as ``bad_length`` as soon as a later 0xA0 starts a plausible
   head or a complete, checksum-valid frame. Plausible: a (Cmd, Len) shape the driver knows,
   or a tag command whose PC confirms its Len. Why not wait: a command-driven reader goes
   quiet after its round's summary until we answer it, so waiting for the rest of a 255-byte
   "frame" that never comes would stall the link. A complete, checksum-valid frame of unknown
   shape with such a head inside it gets the same treatment (noise passes the checksum one
   time in 256).
5. An incomplete frame with a plausible head is waited for, unless a complete, valid,
   plausible frame follows it and nothing after that frame waits for more bytes: the reader
   has gone quiet, and the head is a frame that lost bytes on the way (a UART overrun);
   dropped as ``truncated``. So a frame cut short just before a round's summary costs that
   frame, not the link's next seconds.
6. On the command side (a simulated reader) an incomplete command gives way to any complete
   command behind it: hosts send whole commands.

The price of rule 5: a tag whose EPC holds a whole valid frame (someone would have to write it
there) can lose its read when the link delivers the frame in pieces cut right after the
embedded one; an EPC that merely contains 0xA0 bytes cannot. What the 8-bit checksum cannot
catch, a frame that lost bytes in transit yet sums to 0 one time in 256, no framer can.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from zlib import adler32

from gateway.drivers.base import DecodeItem, Framer, Rejected
from gateway.drivers.r2000.codes import HEAD, MAX_LEN, MIN_LEN, TAG_CMDS
from gateway.drivers.r2000.frames import (
    REPLY_SHAPES,
    SHAPE_KNOWN,
    SHAPE_TAG,
    TagFrame,
    parse_command,
    parse_reply,
)

__all__ = ["Direction", "R2000Framer", "frame_sum_ok"]

#: Which side's frames the stream carries: ``reply`` on the gateway (frames from the reader;
#: our own commands seen there are echoes), ``command`` on a simulated reader (from the host).
Direction = Literal["reply", "command"]

_TAG_CMD = tuple(c in TAG_CMDS for c in range(256))
_NO_TAG_CMD = (False,) * 256
#: A tag frame's Len by the PC word's high byte: 7 + (PC >> 11) * 2.
_TAG_LEN = tuple(7 + (b >> 3) * 2 for b in range(256))
_new_object = object.__new__
_set_tag_raw = TagFrame.__dict__["raw"].__set__  # as frames.trusted_tag_frame does


def frame_sum_ok(frame: bytes) -> bool:
    """Whether a whole frame sums to 0 mod 256 (its Check byte is right).

    Adler-32 started at 0 keeps the plain byte sum modulo 65521 in its low 16 bits, computed
    in C without a Python loop: three times faster than ``sum()`` on a tag frame. A frame
    starting with 0xA0 sums to at most 0xA0 + 255 * 0xFF + 0xFF = 65440 < 65521, so no
    reduction happens and the low byte is the 8-bit sum.
    """
    return not adler32(frame, 0) & 0xFF


class R2000Framer(Framer):
    """Frames of one R2000 stream (see the module docstring for the rules).

    ``echoes``: the exact command frames this side sends. On the gateway side a frame equal to
    one of them is a :class:`~.frames.Command` even where its bytes would also read as a reply
    (``A0 04 01 89 01 D1`` could be a status reply to 0x89).
    """

    max_frame_len = MAX_LEN + 2

    def __init__(self, direction: Direction = "reply", echoes: Iterable[bytes] = ()) -> None:
        if direction not in ("reply", "command"):
            raise ValueError(f"direction {direction!r}: reply or command")
        self.direction = direction
        self.echoes = frozenset(echoes)
        self._commands = direction == "command"
        # Host commands are never tag frames: the command side's table says no to every code.
        self._tag_cmd = _NO_TAG_CMD if self._commands else _TAG_CMD

    def decode(self, buf: bytes, pos: int = 0) -> tuple[int, DecodeItem | None]:
        end = len(buf)
        if pos >= end:
            return 0, None
        if buf[pos] != HEAD:
            q = buf.find(HEAD, pos)
            if q < 0:
                q = end
            return q - pos, Rejected("garbage", buf[pos:q])
        if pos + 1 == end:
            return 0, None
        length = buf[pos + 1]
        if length < MIN_LEN:
            return self._resync(buf, pos, end, "bad_length")
        stop = pos + length + 2
        if stop > end:
            if buf.find(HEAD, pos + 1) < 0:
                return 0, None  # nothing behind it could replace it: wait (the usual case)
            return self._incomplete(buf, pos, end)
        raw = buf[pos:stop]
        if adler32(raw, 0) & 0xFF:
            return self._resync(buf, pos, end, "bad_checksum")
        # The hot path: a tag frame (recognised here rather than in parse_reply, and built
        # without repeating the checks just made, since a busy reader sends little else).
        if length >= 7 and self._tag_cmd[raw[3]] and length == _TAG_LEN[raw[5]]:
            # trusted_tag_frame(raw), inlined: one Python call less on every read
            frame = _new_object(TagFrame)
            _set_tag_raw(frame, raw)
            return length + 2, frame
        if self._commands or raw in self.echoes:
            return length + 2, parse_command(raw)
        reply = parse_reply(raw)
        if reply.kind == "raw":
            q = self._plausible_inside(buf, pos, stop, end)
            if q:
                return q - pos, Rejected("bad_length", buf[pos:q])
        return length + 2, reply

    # -- the slow paths ----------------------------------------------------------------------

    def _resync(self, buf: bytes, pos: int, end: int, reason: str) -> tuple[int, Rejected]:
        """Drop the bytes up to the next 0xA0 (all of them if there is none)."""
        q = buf.find(HEAD, pos + 1)
        if q < 0:
            q = end
        return q - pos, Rejected(reason, buf[pos:q])

    def _head_verdict(self, buf: bytes, pos: int, end: int) -> bool | None:
        """Whether the frame head at ``pos`` (an 0xA0, Len >= 3) is plausible; None when too
        few bytes are in to tell."""
        if pos + 4 > end:
            return None
        length = buf[pos + 1]
        shape = REPLY_SHAPES[buf[pos + 3] << 8 | length]
        if shape & SHAPE_KNOWN:
            return True
        if shape & SHAPE_TAG:
            if pos + 6 > end:
                return None
            return length == ((buf[pos + 5] >> 3) << 1) + 7
        return False

    def _incomplete(self, buf: bytes, pos: int, end: int) -> tuple[int, DecodeItem | None]:
        """The frame at ``pos`` is not all in: wait for it, or drop it (rules 4-6)."""
        if self._commands:
            # A host sends whole commands one at a time: a complete command behind an
            # incomplete one proves the first is noise, whatever it looks like.
            q = buf.find(HEAD, pos + 1)
            while q >= 0:
                if self._valid_at(buf, q, end):
                    return q - pos, Rejected("bad_length", buf[pos:q])
                q = buf.find(HEAD, q + 1)
            return 0, None
        verdict = self._head_verdict(buf, pos, end)
        if verdict is None:
            return 0, None  # too few bytes to judge: wait
        if verdict:
            return self._unfinished(buf, pos, end)
        q = buf.find(HEAD, pos + 1)
        while q >= 0:
            if self._valid_at(buf, q, end):
                return q - pos, Rejected("bad_length", buf[pos:q])
            if q + 1 < end and buf[q + 1] >= MIN_LEN:
                verdict = self._head_verdict(buf, q, end)
                if verdict:
                    return q - pos, Rejected("bad_length", buf[pos:q])
                if verdict is None:
                    break  # too few bytes to judge this one yet: wait
            q = buf.find(HEAD, q + 1)
        return 0, None

    def _unfinished(self, buf: bytes, pos: int, end: int) -> tuple[int, Rejected | None]:
        """A plausible frame at ``pos`` is not all in. Wait for it, unless the first complete
        frame behind it (checksum-valid, plausible) and everything after that frame leave
        nothing to wait for: then the reader has said all it will say for now, and the head
        is a frame that lost bytes on the way."""
        q = buf.find(HEAD, pos + 1)
        while q >= 0:
            if self._valid_at(buf, q, end) and self._head_verdict(buf, q, end):
                if self._settled(buf, q + buf[q + 1] + 2, end):
                    return q - pos, Rejected("truncated", buf[pos:q])
                return 0, None
            q = buf.find(HEAD, q + 1)
        return 0, None

    def _settled(self, buf: bytes, q: int, end: int) -> bool:
        """Whether ``buf[q:end]`` holds only complete, checksum-valid frames and bytes that
        cannot start one: nothing there waits for more bytes."""
        while q < end:
            if buf[q] != HEAD:
                q = buf.find(HEAD, q)
                if q < 0:
                    return True
            if not self._valid_at(buf, q, end):
                return False
            q += buf[q + 1] + 2
        return True

    def _valid_at(self, buf: bytes, q: int, end: int) -> bool:
        """Whether a complete, checksum-valid frame starts at ``q``."""
        if q + 1 >= end:
            return False
        length = buf[q + 1]
        stop = q + length + 2
        return length >= MIN_LEN and stop <= end and frame_sum_ok(buf[q:stop])

    def _plausible_inside(self, buf: bytes, pos: int, stop: int, end: int) -> int:
        """The first 0xA0 inside ``buf[pos+1:stop]`` that starts a plausible head (judged
        with every byte in, also past ``stop``), or 0."""
        q = buf.find(HEAD, pos + 1, stop)
        while q >= 0:
            if q + 1 < end and buf[q + 1] >= MIN_LEN and self._head_verdict(buf, q, end):
                return q
            q = buf.find(HEAD, q + 1, stop)
        return 0
