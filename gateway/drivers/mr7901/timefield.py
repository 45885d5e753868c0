"""The 6-byte time field of the MR7901 protocol: ``YY MM DD hh mm ss``, one binary byte each,
year counted from 2000 (``11 01 0E 11 16 32`` = 2017-01-14 17:22:50).

The station writes its own local clock and the platform answers with its time in the station's
zone: the field carries no zone, so decoded times are naive. A field that is not a calendar time
(a station whose clock was never set sends zeros) decodes to None, and None encodes as zeros.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from gateway.drivers.mr7901.errors import EncodeError

__all__ = ["TIME_LEN", "YEAR_MAX", "YEAR_MIN", "decode_time", "encode_time", "station_clock"]

TIME_LEN = 6
YEAR_MIN = 2000
YEAR_MAX = 2255
_ZERO = bytes(TIME_LEN)


def decode_time(field: bytes) -> datetime | None:
    """The naive time in ``field`` (6 bytes), or None when it is not a valid calendar time."""
    if len(field) != TIME_LEN:
        return None
    yy, mo, dd, hh, mi, ss = field
    try:
        return datetime(YEAR_MIN + yy, mo, dd, hh, mi, ss)
    except ValueError:
        return None


def encode_time(value: datetime | None) -> bytes:
    """6 bytes for ``value`` (its wall-clock fields as they are; sub-seconds dropped)."""
    if value is None:
        return _ZERO
    if not YEAR_MIN <= value.year <= YEAR_MAX:
        raise EncodeError(f"year {value.year} outside {YEAR_MIN}..{YEAR_MAX}")
    return bytes((value.year - YEAR_MIN, value.month, value.day,
                  value.hour, value.minute, value.second))


def station_clock(now: datetime, tz: tzinfo) -> datetime | None:
    """``now`` as the station's naive wall clock in zone ``tz`` (a naive ``now`` is taken as
    UTC), whole seconds; None when the year cannot be sent (a gateway whose clock reads 1970
    must not crash its replies: the station then gets the zero time)."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    try:
        local = aware.astimezone(tz).replace(tzinfo=None, microsecond=0)
    except OverflowError:  # datetime.min/max shifted past the calendar's ends
        return None
    return local if YEAR_MIN <= local.year <= YEAR_MAX else None
