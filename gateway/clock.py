"""The gateway's view of its own clock: plausible, or suspect.

Edge boxes often have no battery-backed clock: after a power cut they boot in 1970 (or at the
image's build time) until NTP answers. A sighting stamped then carries a wrong time, and the
centre must know it rather than trust it. A clock earlier than the build date of this software
cannot be right; the gateway says so in health and marks the sightings it stamps meanwhile
(``clock_suspect: true`` in the message envelope). It never invents a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

__all__ = ["BUILD_DATE", "ClockCheck", "ClockStatus"]

#: No correct clock can read earlier than the day this software was built.
BUILD_DATE: Final = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """``status`` is ``ok`` or ``suspect``; ``reason`` says why it is suspect."""

    status: str
    reason: str = ""

    @property
    def suspect(self) -> bool:
        return self.status == "suspect"

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason} if self.reason else \
            {"status": self.status}


class ClockCheck:
    """Judges a UTC time against the build date (pure: the time is passed in)."""

    def __init__(self, build_date: datetime = BUILD_DATE) -> None:
        self.build_date = build_date

    def check(self, now: datetime) -> ClockStatus:
        if now < self.build_date:
            return ClockStatus("suspect", f"clock {now.date().isoformat()} is before the "
                               f"software's build date {self.build_date.date().isoformat()}")
        return ClockStatus("ok")
