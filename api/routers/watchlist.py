"""The stolen-vehicle watchlist: list, report, recover/withdraw (changes audited and announced
to every tracker instance on ``{root}/watchlist``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, StorageDep
from api.serialize import watch_json
from pak.timefmt import utcnow
from tracker.watchlist import encode_watchlist_change

router = APIRouter(prefix="/api/watchlist", tags=["watchlist"])


class Report(BaseModel):
    tag_id: str = Field(pattern=r"^[0-9A-Fa-f]{2,64}$")
    case_no: str = Field(min_length=1, max_length=200)
    reporter: str | None = Field(None, max_length=200)
    note: str = Field("", max_length=2000)


@router.get("")
def list_watchlist(storage: StorageDep, _who: PrincipalDep,
                   status: Literal["active", "recovered", "withdrawn", "all"] = "active"
                   ) -> list[dict[str, Any]]:
    return [watch_json(w) for w in storage.watchlist(status=None if status == "all" else status)]


def _announce(request: Request, payload: bytes) -> None:
    announcer = request.app.state.announcer
    if announcer is not None:
        announcer(payload)


@router.post("", status_code=201)
def report(body: Report, request: Request, storage: StorageDep,
           who: PrincipalDep) -> dict[str, Any]:
    now = utcnow()
    tag = body.tag_id.upper()
    entry = storage.watchlist_add(tag, case_no=body.case_no, reporter=body.reporter or who.user,
                                  reported_at=now, note=body.note, at=now)
    storage.append_audit(actor=who.user, action="watchlist_add", reason=body.case_no,
                         params={"tag_id": tag, "note": body.note}, at=now)
    _announce(request, encode_watchlist_change("add", tag, now, case=body.case_no,
                                               reporter=body.reporter or who.user,
                                               note=body.note))
    return watch_json(entry)


@router.delete("/{tag_id}")
def remove(tag_id: str, request: Request, storage: StorageDep, who: PrincipalDep,
           status: Annotated[Literal["recovered", "withdrawn"], Query()] = "recovered",
           case_no: str | None = None) -> dict[str, Any]:
    now = utcnow()
    tag = tag_id.upper()
    changed = storage.watchlist_remove(tag, status=status, at=now, case_no=case_no)
    if not changed:
        raise HTTPException(404, f"tag {tag} is not on the active watchlist")
    storage.append_audit(actor=who.user, action="watchlist_remove", reason=status,
                         params={"tag_id": tag, "case_no": case_no}, at=now)
    _announce(request, encode_watchlist_change("remove", tag, now, case=case_no, reason=status))
    return {"tag_id": tag, "changed": changed, "status": status}
