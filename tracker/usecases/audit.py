"""Record an audit entry: who did what, and why, before its result is shown.

The API records with its authenticated user; ``pak trail`` and ``pak watchlist`` run on a
server's shell, where the operating-system account is the person (or the service account a
script runs under): that is what the audit log names when no actor is given.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from typing import Any

from pak.timefmt import utcnow
from tracker.storage.base import AuditStore

__all__ = ["os_user", "record_audit"]


def os_user() -> str:
    """The operating-system user running this process (``sudo`` keeps the invoking user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        user = f"uid:{os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def record_audit(store: AuditStore, *, action: str, reason: str, params: dict[str, Any],
                 at: datetime | None = None, actor: str | None = None) -> None:
    """Record one action in the audit log (``actor`` defaults to the operating-system user;
    datetimes in ``params`` are written as ISO 8601 text)."""
    clean = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in params.items()}
    store.append_audit(actor=actor or os_user(), action=action, reason=reason, params=clean,
                       at=at or utcnow())
