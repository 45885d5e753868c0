"""Where the alert engine plugs into the ingest pipeline.

A :class:`SightingHook` sees every incoming sightings message *before* it is batched, so a
stolen-vehicle hit is raised the moment the vehicle passes, not when the batch commits. The hook
publishes its alerts itself (at once) and returns them, and the pipeline stores them in the same
transaction as the sightings that caused them. A redelivered message is shown to the hook again;
an alert id derived from its cause makes that harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pak.alert import Alert
from pak.types import Sighting

__all__ = ["SightingHook", "WatchlistHook"]


@runtime_checkable
class SightingHook(Protocol):
    """Called in the MQTT receive thread for each valid sightings message; keep it quick."""

    def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        """Check ``sightings``; publish and return the alerts they raise (or an empty list)."""
        ...


@runtime_checkable
class WatchlistHook(Protocol):
    """Told of each valid change on ``{root}/watchlist`` (every tracker instance receives all)."""

    def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None: ...
