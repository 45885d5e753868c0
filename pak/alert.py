"""An alert as the components pass it: raised by the tracker's handlers, carried and stored by
the ingest pipeline with the batch of its cause, encoded on ``{root}/alerts/{kind}``.

It lives in the core because every layer that handles one (tracker, ingest, the wire codec)
must import it without importing the layer above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pak.types import SightingId

__all__ = ["Alert"]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored (and, as JSON, published on ``{root}/alerts/{kind}``).

    ``alert_id`` is derived from its cause (the sighting id for a hit), so storing the same
    alert twice updates one row."""

    alert_id: str
    kind: str
    at: datetime
    status: str = "new"
    tag_id: str | None = None
    reader_id: str | None = None
    gateway_id: str | None = None
    sighting: SightingId | None = None
    detail: dict[str, Any] = field(default_factory=dict)
