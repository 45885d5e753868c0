"""Retention of sightings, and the evidence it must never lose.

Sightings older than the configured number of days go. Before they do, every one still tied
to an open matter is copied into ``evidence_sightings``, an ordinary table retention never
touches. "Tied to an open matter" (:data:`EVIDENCE_CONDITION`, the same SQL in both backends):

* its tag is on the watchlist with status ``active`` (an open case), or
* its tag is the tag of an alert that is not ``closed``, or
* its sighting id is one of the sightings of an alert that is not ``closed``.

How the old rows go depends on the backend and, on PostgreSQL, on the TimescaleDB license
(``SHOW timescaledb.license``):

``drop_chunks`` (license ``apache``: no policies, no compression)
    the tracker calls ``Storage.retention(days, now=...)`` on its own schedule (or cron runs
    ``pak db retention``): evidence copy, then ``drop_chunks(older_than => now - days)``, in
    one transaction. Chunks are a day wide, so up to a day more than ``days`` may remain.
``policy`` (license ``timescale``)
    compression after a few days and a retention policy run by TimescaleDB's own scheduler,
    dropping at ``days`` + :data:`POLICY_GRACE`. Each call still copies the evidence of rows
    older than ``days``: run it at least once per grace period, and evidence is copied before
    the policy drops its chunk.
``delete`` (SQLite)
    evidence copy, then ``DELETE`` of the old rows, in one transaction.

Each backend logs one line naming the mode the first time retention runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final, Literal

from pak.logs import event

__all__ = ["EVIDENCE_CONDITION", "POLICY_GRACE", "RetentionMode", "log_mode"]

RetentionMode = Literal["drop_chunks", "policy", "delete"]

#: Extra age the TimescaleDB retention policy waits beyond ``days`` (see the module text).
POLICY_GRACE: Final = timedelta(days=1)

#: Rows of ``sightings AS s`` that must be kept as evidence (SQL valid in both dialects).
EVIDENCE_CONDITION: Final = """(
    s.tag_id IN (SELECT w.tag_id FROM watchlist w WHERE w.status = 'active')
    OR s.tag_id IN (SELECT a.tag_id FROM alerts a
                    WHERE a.status <> 'closed' AND a.tag_id IS NOT NULL)
    OR EXISTS (SELECT 1 FROM alert_sightings x JOIN alerts a ON a.alert_id = x.alert_id
               WHERE a.status <> 'closed' AND x.gateway_id = s.gateway_id
                 AND x.spool_id = s.spool_id AND x.seq = s.seq)
)"""

_log = logging.getLogger("tracker.storage.retention")

_WHY: Final[dict[str, str]] = {
    "drop_chunks": "TimescaleDB apache license: no retention policy or compression; "
                   "drop_chunks on the tracker's own schedule",
    "policy": "TimescaleDB retention and compression policies",
    "delete": "SQLite: DELETE of old rows",
}


def log_mode(mode: RetentionMode, *, license: str | None, days: float) -> None:
    """The one line that says which retention mode is on."""
    event(_log, logging.INFO, "retention_mode", mode=mode, license=license, days=days,
          how=_WHY[mode])
