"""Wire times: RFC 3339 UTC with milliseconds and a ``Z`` (``2026-11-28T06:15:02.125Z``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["format_time", "parse_time", "to_millis", "utcnow"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """Format an aware datetime as the wire does; naive datetimes are refused (ambiguous)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: wire times must be aware (UTC)")
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(s: str) -> datetime:
    """Parse a wire time. Accepts RFC 3339 with ``Z`` or an offset; returns aware UTC.

    Raises ValueError on anything else (a naive time is refused: its zone is unknown).
    """
    if not isinstance(s, str) or len(s) < 20 or len(s) > 40:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    t = datetime.fromisoformat(s[:-1] + "+00:00" if s[-1] in "Zz" else s)
    if t.tzinfo is None:
        raise ValueError(f"time without a zone: {s!r}")
    return t.astimezone(UTC)


def to_millis(t: datetime) -> int:
    """Milliseconds since the Unix epoch (wire times carry millisecond precision)."""
    return (t - _EPOCH) // timedelta(milliseconds=1)
