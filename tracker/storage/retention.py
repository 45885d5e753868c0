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
    ``pak tracker --retention-days N`` calls ``Storage.retention(days, now=...)`` on its own
    schedule (tracker/storage/retention_runner.py; ``pak db retention`` runs it once): evidence
    copy, then ``drop_chunks(older_than => now - days)``, in one transaction. Chunks are a day
    wide, so up to a day more than ``days`` may remain.
``policy`` (license ``timescale``, the Community edition)
    compression after a few days and a retention policy (``add_retention_policy``) run by
    TimescaleDB's own scheduler, dropping at ``days`` + :data:`POLICY_GRACE`. The database
    cannot copy evidence by itself, so the tracker keeps its schedule: each run copies the
    evidence of rows older than ``days``, a whole grace period before the policy may drop
    them. The scheduler runs far more often than once per grace period (``retention_interval_s``
    is at most 12 hours), so evidence is copied before the policy drops its chunk unless every
    tracker is down for longer than the grace; the health endpoint shows the last success.
``delete`` (SQLite)
    evidence copy, then ``DELETE`` of the old rows, in one transaction.

On PostgreSQL each run also deletes the ``sighting_ids`` claims of the chunks already gone
(tracker/storage/one_row.py). One run at a time: the transaction first takes the advisory
lock :data:`RETENTION_LOCK` without waiting and, when another instance holds it, answers
``skipped`` (:data:`SKIPPED_BUSY`) and does nothing; SQLite's single write lock serialises
runs by itself.

Each backend logs one line naming the mode the first time retention runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final, Literal

from pak.logs import event

__all__ = ["EVIDENCE_CONDITION", "POLICY_GRACE", "RETENTION_LOCK", "SKIPPED_BUSY",
           "RetentionMode", "log_mode"]

RetentionMode = Literal["drop_chunks", "policy", "delete"]

#: Extra age the TimescaleDB retention policy waits beyond ``days`` (see the module text).
POLICY_GRACE: Final = timedelta(days=1)

#: Key of the transaction-scoped advisory lock that keeps retention to one run at a time.
RETENTION_LOCK: Final = 0x70616B5F726574  # "pak_ret"

#: ``skipped`` of a run that found another instance running retention.
SKIPPED_BUSY: Final = "another instance is running retention"

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
    "policy": "TimescaleDB Community: the database's own retention policy "
              "(add_retention_policy, days + 1 day grace) and compression; the tracker "
              "copies evidence on its schedule ahead of the policy",
    "delete": "SQLite: DELETE of old rows",
}


def log_mode(mode: RetentionMode, *, license: str | None, days: float) -> None:
    """The one line that says which retention mode is on."""
    event(_log, logging.INFO, "retention_mode", mode=mode, license=license, days=days,
          how=_WHY[mode])
