"""Record an audit entry: who did what, and why, before its result is shown.

The API records with its authenticated user, role and client address; ``pak trail`` and
``pak watchlist`` run on a server's shell, where the operating-system account is the person
(or the service account a script runs under): that is what the audit log names when no actor
is given.

Invariants: records are appended to a hash chain (``tracker/storage/audit_chain.py``) and
never changed (the database refuses UPDATE and DELETE on the table). A record that cannot be
written raises :class:`AuditNotWritten`, and the caller must then refuse the query: nothing
about a person's movements is shown without its record. :func:`log_head` writes the chain's
head to the log, so a later rewrite of the whole chain is caught against the logged hashes.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pak.logs import event
from pak.timefmt import format_time, utcnow
from tracker.storage.audit_chain import ChainReport, verify
from tracker.storage.base import AuditStore
from tracker.storage.records import AuditEntry

__all__ = ["AuditNotWritten", "log_head", "os_user", "record_audit", "verify_chain"]

log = logging.getLogger("pak.audit")


class AuditNotWritten(Exception):
    """The audit record could not be written: the audited action must not go ahead."""


def os_user() -> str:
    """The operating-system user running this process (``sudo`` keeps the invoking user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        user = f"uid:{os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def record_audit(store: AuditStore, *, action: str, reason: str, params: dict[str, Any],
                 at: datetime | None = None, actor: str | None = None,
                 role: str | None = None, client: str | None = None) -> AuditEntry:
    """Record one action in the audit log (``actor`` defaults to the operating-system user;
    datetimes in ``params`` are written as ISO 8601 text). Raises AuditNotWritten."""
    clean = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in params.items()}
    try:
        return store.append_audit(actor=actor or os_user(), action=action, reason=reason,
                                  params=clean, at=at or utcnow(), role=role, client=client)
    except Exception as e:
        event(log, logging.ERROR, "audit_not_written", action=action, error=str(e))
        raise AuditNotWritten(str(e) or type(e).__name__) from e


def _chain(store: AuditStore, batch: int = 10_000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = store.audit_chain(after_id=after, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def verify_chain(store: AuditStore) -> ChainReport:
    """Check the whole chain, oldest first, stopping at the first broken record."""
    return verify(_chain(store))


def log_head(store: AuditStore) -> AuditEntry | None:
    """Write the chain's head (id, hash, time) to the log; None when the log is empty.
    Signing the head is left for the signing keys (pak/keys) to land."""
    head = store.audit_head()
    if head is not None:
        event(log, logging.INFO, "audit_head", id=head.id, hash=head.hash,
              at=format_time(head.at))
    return head
