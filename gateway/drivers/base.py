"""The contract every reader driver follows. Pure: bytes in, frames, TagReads and reply bytes
out; no I/O, no clock, nothing of the runtime.

Three layers, each visible in a driver package's file list:

``frames.py``
    Frozen dataclasses, one per frame kind, each with ``encode() -> bytes`` and a ``kind``
    name; parsing of one complete frame. No buffering.
``framer.py``
    A :class:`Framer`: the pymodbus-style pure contract ``decode(buf) -> (consumed, item)``
    that finds the next frame in a byte buffer, validates it, and on garbage drops bytes and
    says why (:class:`Rejected`), resyncing on the next start-of-frame candidate.
``protocol.py``
    The :class:`Driver`: command table (bytes to send to start, to ping), replies owed to the
    reader for a frame (re-issue an inventory, acknowledge a station), echo detection, and
    frame -> TagRead mapping.

:class:`StreamDecoder` is shared by all drivers: it owns the bounded buffer, feeds the framer,
and keeps the counters the gateway reports in health and ``pak decode`` prints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, Protocol, runtime_checkable

from pak.types import TagRead

__all__ = [
    "DecodeStats",
    "Driver",
    "EncodesRaw",
    "Frame",
    "Framer",
    "Rejected",
    "StreamDecoder",
]


@runtime_checkable
class Frame(Protocol):
    """A decoded frame: a frozen dataclass with a ``kind`` name and the exact ``raw`` bytes."""

    @property
    def kind(self) -> str: ...

    @property
    def raw(self) -> bytes: ...


class EncodesRaw:
    """Mixin for a frozen, slotted frame dataclass with a ``raw: bytes = b""`` field and an
    ``encode()``: parsed from bytes, ``raw`` is kept as received; built from values (``raw``
    left empty), ``raw`` is filled with ``encode()``, which also checks the values fit the wire.

    Empty ``__slots__`` so the dataclass's instances stay slot-only (no ``__dict__``).
    """

    __slots__ = ()

    raw: bytes

    def __post_init__(self) -> None:
        if not self.raw:
            object.__setattr__(self, "raw", self.encode())

    def encode(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bytes a framer dropped, and why. Reasons are short stable codes, e.g. ``garbage``,
    ``bad_checksum``, ``bad_length``, ``truncated``, ``unknown_command``, ``bad_tag_check``."""

    reason: str
    data: bytes

    kind: ClassVar[str] = "rejected"


DecodeItem = Frame | Rejected


class Framer(ABC):
    """Finds frames in a byte buffer. Pure and stateless between calls.

    ``decode(buf, pos=0)`` looks at ``buf[pos:]`` (an offset rather than a slice, so the hot
    path copies nothing) and returns ``(consumed, item)``:

    * ``(0, None)``: ``buf[pos:]`` holds no complete frame yet (it may be empty or a frame
      prefix); call again with more bytes.
    * ``(n, frame)``: ``buf[pos:pos+n]`` was exactly one valid frame (leading bytes are never
      part of a frame: garbage is reported first, in a separate call).
    * ``(n, Rejected)``: ``buf[pos:pos+n]`` is dropped, with the reason. After a bad checksum or an
      implausible length the framer drops only up to the next start-of-frame candidate, so a
      corrupted length never swallows good frames behind it.

    ``decode`` never raises on any input.
    """

    #: Largest frame this protocol can carry: the stream decoder's buffer bound follows it.
    max_frame_len: ClassVar[int]

    @abstractmethod
    def decode(self, buf: bytes, pos: int = 0) -> tuple[int, DecodeItem | None]: ...

    def flush(self, buf: bytes) -> Rejected | None:
        """End of input: what is left in ``buf`` cannot become a frame."""
        return Rejected("truncated", bytes(buf)) if buf else None


@dataclass
class DecodeStats:
    """Cumulative counters of one stream decoder."""

    frames: Counter[str] = field(default_factory=Counter)  # by frame kind
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    rejected_bytes: int = 0
    bytes_in: int = 0

    @property
    def frames_ok(self) -> int:
        return sum(self.frames.values())

    @property
    def frames_bad(self) -> int:
        return sum(n for r, n in self.rejected.items() if r != "garbage")

    @property
    def garbage_bytes(self) -> int:
        return self.rejected_bytes

    def as_dict(self) -> dict[str, object]:
        return {
            "bytes_in": self.bytes_in,
            "frames_ok": self.frames_ok,
            "frames": dict(self.frames),
            "rejected": dict(self.rejected),
            "rejected_bytes": self.rejected_bytes,
        }


class StreamDecoder:
    """Turns a byte stream, in any chunking, into frames and rejections, in order.

    The buffer is bounded by ``max_buffer`` (default: a few frames): if a peer streams bytes
    that never complete a frame, the oldest are rejected as ``overflow`` so memory stays flat.
    """

    def __init__(self, framer: Framer, max_buffer: int | None = None) -> None:
        self.framer = framer
        self.max_buffer = max_buffer or 4 * framer.max_frame_len
        # immutable bytes plus an offset: the framer reads in place, and the leftover is one
        # slice per feed (this loop runs for every frame a reader sends)
        self._buf = b""
        self.stats = DecodeStats()

    def feed(self, data: bytes) -> list[DecodeItem]:
        """Add bytes; return every frame and rejection now complete, in stream order."""
        stats = self.stats
        stats.bytes_in += len(data)
        buf = self._buf + data if self._buf else bytes(data)
        decode = self.framer.decode
        out: list[DecodeItem] = []
        append = out.append
        start, end = 0, len(buf)
        while start < end:
            consumed, item = decode(buf, start)
            if item is None:
                break
            start += consumed
            append(item)
        self._buf = buf[start:] if start else buf
        frames = stats.frames
        for item in out:
            if type(item) is Rejected:
                stats.rejected[item.reason] += 1
                stats.rejected_bytes += len(item.data)
            else:
                frames[item.kind] += 1
        if len(self._buf) > self.max_buffer:
            # Cannot happen with a correct framer (it rejects what cannot be a frame); kept as
            # the hard bound that protects an unattended box from a misbehaving peer.
            cut = len(self._buf) - self.framer.max_frame_len
            excess, self._buf = self._buf[:cut], self._buf[cut:]
            out.append(self._count(Rejected("overflow", excess)))
        return out

    def flush(self) -> list[DecodeItem]:
        """End of stream: return the leftover bytes as a rejection (if any) and reset."""
        rest = self.framer.flush(self._buf)
        self._buf = b""
        return [self._count(rest)] if rest else []

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _count(self, item: DecodeItem) -> DecodeItem:
        if isinstance(item, Rejected):
            self.stats.rejected[item.reason] += 1
            self.stats.rejected_bytes += len(item.data)
        else:
            self.stats.frames[item.kind] += 1
        return item


class Driver(ABC):
    """A reader protocol: framing, commands, replies and the mapping to TagReads.

    One instance per link; it may keep small per-link protocol state (a station's session).
    """

    name: ClassVar[str]
    #: Model names this driver accepts; the first is the default.
    models: ClassVar[tuple[str, ...]] = ("default",)
    #: How the reader is reached: a serial line (or socket:// to a device server), or a station
    #: that dials in to a TCP server on the gateway.
    transport: ClassVar[Literal["serial", "tcp-server"]] = "serial"
    default_baud: ClassVar[int] = 115200
    #: Seconds without a read after which a sighting closes (readers that report continuously:
    #: 3 s; stations that re-report every few tens of seconds: longer).
    default_exit_after: ClassVar[float] = 3.0

    def __init__(self, model: str | None = None) -> None:
        model = model or self.models[0]
        if model not in self.models:
            raise ValueError(f"driver {self.name}: unknown model {model!r} "
                             f"(one of {', '.join(self.models)})")
        self.model = model

    @abstractmethod
    def framer(self) -> Framer:
        """A new framer for one stream."""

    def decoder(self) -> StreamDecoder:
        return StreamDecoder(self.framer())

    @abstractmethod
    def reads(self, frame: Frame) -> list[TagRead]:
        """The tag reads a frame carries (none for most non-tag frames; several for a
        multi-tag inventory reply)."""

    def rejections(self, frame: Frame) -> list[Rejected]:
        """Parts of a valid frame that are themselves bad (e.g. an MR7901 tag record whose
        check byte does not match): counted and reported like framing rejections, while the
        rest of the frame is used and answered."""
        return []

    def start_commands(self) -> list[bytes]:
        """Bytes to send when the link opens (e.g. start real-time inventory)."""
        return []

    def ping_command(self) -> bytes | None:
        """A cheap command whose reply proves the reader is alive (watchdog), or None."""
        return None

    def is_ping_reply(self, frame: Frame) -> bool:
        return False

    def replies(self, frame: Frame, now: datetime) -> list[bytes]:
        """Bytes owed to the reader after this frame: re-issue an inventory round after its
        summary, acknowledge a station's message. ``now`` is the gateway's clock (UTC), which
        some replies carry; drivers never read a clock themselves."""
        return []

    def is_echo(self, frame: Frame) -> bool:
        """True when ``frame`` is our own command echoed back (RS-485 adapters do this)."""
        return False

    def frame_json(self, frame: Frame) -> dict[str, object]:
        """A JSON-able description of a non-tag frame for ``pak decode --all``."""
        return {"frame": frame.kind, "raw": frame.raw.hex().upper()}
