"""The stolen-vehicle watchlist: list, report, recover/withdraw (changes audited and announced
to every tracker instance on ``{root}/watchlist``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, StorageDep
from api.errors import ErrorBody
from api.models import WatchlistChange
from api.serialize import watch_json
from pak.wire.watchlist import WatchEntryRecord
from tracker.usecases.watchlist import Announce, report_stolen, withdraw

router = APIRouter(prefix="/api/watchlist", tags=["watchlist"])


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag_id: str = Field(pattern=r"^[0-9A-Fa-f]{2,64}$")
    case_no: str = Field(min_length=1, max_length=200)
    reporter: str | None = Field(None, max_length=200)
    note: str = Field("", max_length=2000)


@router.get("", response_model=list[WatchEntryRecord])
def list_watchlist(storage: StorageDep, _who: PrincipalDep,
                   status: Literal["active", "recovered", "withdrawn", "all"] = "active"
                   ) -> list[dict[str, Any]]:
    return [watch_json(w) for w in storage.watchlist(status=None if status == "all" else status)]


def _announcer(request: Request) -> Announce | None:
    announce: Announce | None = request.app.state.announcer
    return announce


@router.post("", status_code=201, response_model=WatchEntryRecord)
def report(body: Report, request: Request, storage: StorageDep,
           who: PrincipalDep) -> dict[str, Any]:
    entry = report_stolen(storage, body.tag_id.upper(), case_no=body.case_no,
                          reporter=body.reporter or who.user, note=body.note, actor=who.user,
                          via="api", announce=_announcer(request))
    return watch_json(entry)


@router.delete("/{tag_id}", response_model=WatchlistChange, responses={404: {"model": ErrorBody}})
def remove(tag_id: str, request: Request, storage: StorageDep, who: PrincipalDep,
           status: Annotated[Literal["recovered", "withdrawn"], Query()] = "recovered",
           case_no: str | None = None) -> dict[str, Any]:
    tag = tag_id.upper()
    changed = withdraw(storage, tag, status=status, case_no=case_no, actor=who.user, via="api",
                       announce=_announcer(request))
    if not changed:
        raise HTTPException(404, f"tag {tag} is not on the active watchlist")
    return {"tag_id": tag, "changed": changed, "status": status}
