"""Readers, and who passed them ("who passed here between 14:00 and 14:20")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import AuditDep, PrincipalDep, StorageDep, WindowDep
from api.errors import ErrorBody
from api.models import PassesPage
from api.serialize import reader_json, sighting_json
from pak.timefmt import format_time
from pak.wire.alert import ReaderRecord
from tracker.trails.queries import passed_here, readers_for

router = APIRouter(prefix="/api/v1", tags=["readers"])

MAX_ROWS = 10_000


@router.get("/readers", response_model=list[ReaderRecord])
def list_readers(storage: StorageDep, _who: PrincipalDep) -> list[dict[str, Any]]:
    return [reader_json(r) for r in storage.readers()]


@router.get("/readers/{reader_id}", response_model=ReaderRecord,
            responses={404: {"model": ErrorBody}})
def get_reader(reader_id: str, storage: StorageDep, _who: PrincipalDep) -> dict[str, Any]:
    r = storage.get_reader(reader_id)
    if r is None:
        raise HTTPException(404, f"unknown reader {reader_id!r}")
    return reader_json(r)


def _passes(storage: StorageDep, reader_ids: list[str], window: WindowDep,
            audit: AuditDep, limit: int) -> dict[str, Any]:
    readers = readers_for(storage, reader_ids)
    unknown = [r for r in reader_ids if r not in readers]
    if unknown:
        raise HTTPException(404, f"unknown reader(s): {', '.join(unknown)}")
    audit("passed_here", reader_ids=reader_ids, since=window.since, until=window.until)
    rows = passed_here(storage, reader_ids=reader_ids, since=window.since, until=window.until,
                       limit=limit + 1)
    return {"reader_ids": reader_ids, "since": format_time(window.since),
            "until": format_time(window.until), "truncated": len(rows) > limit,
            "passes": [sighting_json(s, readers.get(s.reader_id)) for s in rows[:limit]]}


@router.get("/readers/{reader_id}/passes", response_model=PassesPage,
            responses={404: {"model": ErrorBody}})
def reader_passes(reader_id: str, storage: StorageDep, window: WindowDep, audit: AuditDep,
                  limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000) -> dict[str, Any]:
    """Every tag seen at this reader in the window (audited)."""
    return _passes(storage, [reader_id], window, audit, limit)


@router.get("/passes", response_model=PassesPage, responses={404: {"model": ErrorBody}})
def passes(storage: StorageDep, window: WindowDep, audit: AuditDep,
           reader: Annotated[list[str], Query(min_length=1, max_length=200,
                                              description="reader id (repeat for several)")],
           limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000) -> dict[str, Any]:
    """Every tag seen at any of a set of readers in the window (audited)."""
    return _passes(storage, list(dict.fromkeys(reader)), window, audit, limit)
