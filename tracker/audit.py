"""Auditing of the command-line tools: who (the operating-system user) did what, and why.

The API audits with its authenticated user; ``pak trail`` and ``pak watchlist`` run on a
server's shell, where the operating-system account is the person (or the service account a
script runs under): that is what the audit log names.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from typing import Any

from pak.timefmt import utcnow
from tracker.storage.base import Storage

__all__ = ["audit", "os_user"]


def os_user() -> str:
    """The operating-system user running this process (``sudo`` keeps the invoking user)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        user = f"uid:{os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {user})" if sudo and sudo != user else user


def audit(storage: Storage, *, action: str, reason: str, params: dict[str, Any],
          at: datetime | None = None, actor: str | None = None) -> None:
    """Record one action in the audit log, before its result is shown."""
    storage.append_audit(actor=actor or os_user(), action=action, reason=reason, params=params,
                         at=at or utcnow())
