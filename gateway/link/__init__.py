"""Links to readers: a serial line (any pyserial URL) with a reconnect loop and a watchdog,
or a TCP server for stations that dial in. A link owns its driver instances and delivers
TagReads to the runtime through a :class:`ReadSink`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pak.types import TagRead

__all__ = ["ReadSink"]


class ReadSink(Protocol):
    """Where a link delivers reads: the TagRead, the reader id it came from (the configured
    id for a serial reader; the station's device id for a dial-in station, unless configured),
    and the gateway's UTC time when its last byte arrived."""

    def __call__(self, read: TagRead, reader_id: str, received_at: datetime) -> None: ...
