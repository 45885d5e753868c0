"""``GET /api/v1/audit``: the audit log, for admins: each audited query with its actor, role,
client address, reason, parameters and its place in the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import StorageDep
from api.errors import ErrorBody
from pak.timefmt import format_time

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditRecord(BaseModel):
    id: int
    at: str = Field(description="RFC 3339 UTC")
    actor: str
    role: str | None = Field(description="the caller's role (null: a command-line user or a "
                             "record from before the chain)")
    client: str | None = Field(description="the caller's address (null on the command line)")
    action: str = Field(description="trail, passed_here, seen_together, watchlist_add...")
    reason: str
    params: dict[str, Any]
    prev_hash: str | None
    hash: str | None


@router.get("", response_model=list[AuditRecord],
            responses={422: {"model": ErrorBody, "description": "until not after since"}})
def list_audit(storage: StorageDep,
               actor: Annotated[str | None, Query(max_length=200)] = None,
               action: Annotated[str | None, Query(max_length=100)] = None,
               since: Annotated[datetime | None, Query(description="from (inclusive), RFC 3339 "
                                                       "with zone")] = None,
               until: Annotated[datetime | None, Query(description="to (exclusive), after "
                                                       "since")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditRecord]:
    """Audit records oldest first (in time), filtered by actor, action and time."""
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, f"{name}: a time zone is required (e.g. Z or +08:00)")
    if since is not None and until is not None and until <= since:
        raise HTTPException(422, "until must be after since")
    return [AuditRecord(id=e.id, at=format_time(e.at), actor=e.actor, role=e.role,
                        client=e.client, action=e.action, reason=e.reason, params=e.params,
                        prev_hash=e.prev_hash, hash=e.hash)
            for e in storage.audit_log(actor=actor, action=action, since=since, until=until,
                                       limit=limit)]
