"""The stolen-vehicle watchlist: list, report, recover/withdraw (changes audited and announced
to every tracker instance on ``{root}/watchlist``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, StorageDep
from api.errors import ErrorBody, error_response
from api.models import WatchlistChange
from api.serialize import watch_json
from pak.wire.watchlist import WatchEntryRecord
from tracker.usecases.watchlist import (
    Announce,
    WatchlistConflict,
    import_watchlist,
    report_stolen,
    withdraw,
)

router = APIRouter(prefix="/api/v1/watchlist", tags=["watchlist"])


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


@router.post("", status_code=201, response_model=WatchEntryRecord, responses={
    409: {"description": "the tag is already on the watchlist under another case"}})
def report(body: Report, request: Request, storage: StorageDep,
           who: PrincipalDep) -> dict[str, Any]:
    try:
        entry = report_stolen(storage, body.tag_id.upper(), case_no=body.case_no,
                              reporter=body.reporter or who.user, note=body.note,
                              actor=who.user, via="api", announce=_announcer(request))
    except WatchlistConflict as e:
        raise HTTPException(409, str(e)) from None
    return watch_json(entry)


#: The largest CSV the import route reads (about 50,000 rows).
MAX_IMPORT_BYTES = 4 * 1024 * 1024


@router.post("/import", status_code=201, responses={
    422: {"description": "lines refused (nothing imported): ``rejected`` names each"}},
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {
        "schema": {"type": "string"}}}}})
async def import_csv(request: Request, storage: StorageDep, who: PrincipalDep) -> JSONResponse:
    """Report many stolen tags from a CSV (header: ``tag_id``, ``case``; optional
    ``reporter``, ``reported_at``, ``note``), all or nothing: the same function as
    ``pak watchlist import``. The answer reports every refused line."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise HTTPException(413, f"CSV larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, "the CSV must be UTF-8") from None
    added, rejected = await asyncio.to_thread(
        import_watchlist, storage, text, actor=who.user, via="api import",
        announce=_announcer(request))
    report = {"added": added, "rejected": [{"line": r.line, "error": r.error}
                                           for r in rejected]}
    if rejected:
        return error_response(422, f"{len(rejected)} line(s) refused; nothing imported",
                              report)
    return JSONResponse(report, status_code=201)


@router.delete("/{tag_id}", response_model=WatchlistChange,
                responses={404: {"model": ErrorBody}})
def remove(tag_id: str, request: Request, storage: StorageDep, who: PrincipalDep,
           status: Annotated[Literal["recovered", "withdrawn"], Query(
               description="the outcome, asked every time: recovered (找回) or withdrawn "
               "(撤销)")],
           case_no: str | None = None) -> dict[str, Any]:
    tag = tag_id.upper()
    changed = withdraw(storage, tag, status=status, case_no=case_no, actor=who.user, via="api",
                       announce=_announcer(request))
    if not changed:
        raise HTTPException(404, f"tag {tag} is not on the active watchlist")
    return {"tag_id": tag, "changed": changed, "status": status}
