"""Links to readers: a serial line (any pyserial URL) with a reconnect loop and a watchdog,
or a TCP server for stations that dial in. A link owns its driver instances and delivers
TagReads to the runtime through a :class:`ReadSink`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from pak.types import TagRead

__all__ = ["ReadSink", "deliver"]


class ReadSink(Protocol):
    """Where a link delivers reads: the TagRead, the reader id it came from (the configured
    id for a serial reader; the station's device id for a dial-in station, unless configured),
    and the gateway's UTC time when its last byte arrived."""

    def __call__(self, read: TagRead, reader_id: str, received_at: datetime) -> None: ...


def deliver(sink: ReadSink, reads: Sequence[TagRead], reader_id: str, received_at: datetime,
            on_error: Callable[[str, BaseException], None]) -> int:
    """Hand each read to ``sink``; returns how many it raised on. A sink exception is
    reported to ``on_error("sink", exc)`` and never stops the link or the other reads."""
    errors = 0
    for read in reads:
        try:
            sink(read, reader_id, received_at)
        except Exception as e:
            errors += 1
            on_error("sink", e)
    return errors
