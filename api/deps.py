"""Dependencies shared by the routers, as ``Annotated`` aliases: the storage, who is asking,
and the audit of queries about people's movements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from api.security.access import Principal, PrincipalDep
from api.security.sessions import client_address
from api.settings import ApiSettings
from pak.timefmt import utcnow
from tracker.storage.base import Storage
from tracker.usecases.audit import record_audit

__all__ = ["AuditDep", "Auditor", "PrincipalDep", "SettingsDep", "StorageDep", "Window"]


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


@dataclass
class Auditor:
    """Records one query or change: who, what, why, with which parameters."""

    storage: Storage
    principal: Principal
    reason: str
    client: str | None = None

    def __call__(self, action: str, **params: Any) -> None:
        """Raises AuditNotWritten (answered 503): the query is then refused."""
        record_audit(self.storage, actor=self.principal.user, action=action, reason=self.reason,
                     params=params, role=self.principal.role, client=self.client)


def get_auditor(request: Request, storage: StorageDep, principal: PrincipalDep,
                reason: Annotated[str, Query(min_length=3, max_length=500,
                                             description="why this query is made (audited), "
                                             "e.g. a case number")]) -> Auditor:
    return Auditor(storage, principal, reason.strip(), client_address(request) or None)


AuditDep = Annotated[Auditor, Depends(get_auditor)]


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


MAX_WINDOW_DAYS = 92


def get_window(
    since: Annotated[datetime, Query(description="start, RFC 3339 with zone (inclusive)")],
    until: Annotated[datetime | None, Query(description="end, RFC 3339 with zone "
                                            "(exclusive; default now)")] = None,
) -> Window:
    end = until or utcnow()
    for name, t in (("since", since), ("until", end)):
        if t.tzinfo is None:
            raise HTTPException(422, f"{name}: a time zone is required (e.g. Z or +08:00)")
    if end <= since:
        raise HTTPException(422, "until must be after since")
    if (end - since).days > MAX_WINDOW_DAYS:
        raise HTTPException(422, f"window longer than {MAX_WINDOW_DAYS} days")
    return Window(since, end)


WindowDep = Annotated[Window, Depends(get_window)]
