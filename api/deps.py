"""Dependencies shared by the routers, as ``Annotated`` aliases: the storage, who is asking,
and the audit of queries about people's movements."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request

from api.security.access import Principal, PrincipalDep
from api.security.sessions import client_address
from api.settings import ApiSettings
from pak.timefmt import utcnow
from tracker.storage.base import Storage
from tracker.usecases.audit import record_audit

__all__ = ["AuditDep", "Auditor", "PrincipalDep", "SettingsDep", "StorageDep", "Window",
           "check_reason", "reason_or_422"]


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


#: A reason must hold at least this many visible characters ("盗窃案" has three).
MIN_REASON_VISIBLE = 3
MAX_REASON = 500


def check_reason(raw: str) -> str:
    """The one rule for every reason an officer gives (audited queries, withdrawals): trimmed,
    no control characters, at least :data:`MIN_REASON_VISIBLE` visible characters. Returns
    the trimmed text; raises ValueError with a message officers can read."""
    text = raw.strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise ValueError("理由不能包含控制字符 (reason: no control characters)")
    if len(text) > MAX_REASON:
        raise ValueError(f"理由过长 (reason: at most {MAX_REASON} characters)")
    if sum(not c.isspace() for c in text) < MIN_REASON_VISIBLE:
        raise ValueError(f"请填写查询理由，至少 {MIN_REASON_VISIBLE} 个字 (reason: at least "
                         f"{MIN_REASON_VISIBLE} visible characters, e.g. a case number)")
    return text


def _reason_pattern() -> str:
    """check_reason's rule as a JSON Schema pattern, for the API's description (generated
    clients and fuzzers): three visible characters, none of the refused categories."""
    refused = [c for c in range(0x110000)
               if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp")]
    ranges: list[tuple[int, int]] = []
    for c in refused:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    def esc(c: int) -> str:
        return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"

    cls = "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)
    space = f"[^\\S{cls}]"  # a space that is not refused (tab and newline are controls)
    return f"^{space}*(?:[^\\s{cls}]{space}*){{{MIN_REASON_VISIBLE},}}$"


def reason_or_422(raw: str) -> str:
    try:
        return check_reason(raw)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def get_auditor(request: Request, storage: StorageDep, principal: PrincipalDep,
                reason: Annotated[str, Query(min_length=MIN_REASON_VISIBLE,
                                             max_length=MAX_REASON,
                                             description="why this query is made (audited), "
                                             "e.g. a case number; trimmed, at least "
                                             f"{MIN_REASON_VISIBLE} visible characters, no "
                                             "control characters",
                                             json_schema_extra={"pattern": _reason_pattern()})]
                ) -> Auditor:
    return Auditor(storage, principal, reason_or_422(reason), client_address(request) or None)


AuditDep = Annotated[Auditor, Depends(get_auditor)]


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


MAX_WINDOW_DAYS = 92


#: The window of a query that gives no ``since``: the last day.
DEFAULT_WINDOW = timedelta(hours=24)


def get_window(
    since: Annotated[datetime | None, Query(description="start, RFC 3339 with zone "
                                            "(inclusive; default: 24 hours before until)")] = None,
    until: Annotated[datetime | None, Query(description="end, RFC 3339 with zone "
                                            "(exclusive; default now)")] = None,
) -> Window:
    end = until or utcnow()
    for name, t in (("since", since), ("until", end)):
        if t is not None and t.tzinfo is None:
            raise HTTPException(422, f"{name}: a time zone is required (e.g. Z or +08:00)")
    since = since or end - DEFAULT_WINDOW
    if end <= since:
        raise HTTPException(422, "until must be after since")
    if (end - since).days > MAX_WINDOW_DAYS:
        raise HTTPException(422, f"window longer than {MAX_WINDOW_DAYS} days")
    return Window(since, end)


WindowDep = Annotated[Window, Depends(get_window)]
