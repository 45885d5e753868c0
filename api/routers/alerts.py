"""Alerts: the list, one alert, its lifecycle, and the live feed (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, StorageDep
from api.errors import ErrorBody
from api.serialize import alert_json, alert_message
from tracker.alerts.lifecycle import AlertTransitionError
from tracker.storage.base import NotFound
from tracker.usecases.alerts import move_alert

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

Status = Literal["new", "acknowledged", "dispatched", "closed"]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    note: str | None = Field(None, max_length=2000)


@router.get("")
def list_alerts(storage: StorageDep, _who: PrincipalDep,
                status: Annotated[list[Status] | None, Query()] = None,
                kind: str | None = None, tag_id: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [alert_json(a) for a in storage.alerts(status=status, kind=kind, tag_id=tag_id,
                                                  limit=limit)]


@router.get("/stream")
async def stream(request: Request, _who: PrincipalDep) -> StreamingResponse:
    """Live alerts as server-sent events (``event: alert``), with a comment every 15 s so
    proxies keep the connection open."""
    hub = request.app.state.alert_hub

    async def events() -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        feed = hub.subscribe().__aiter__()
        while not await request.is_disconnected():
            try:
                alert = await asyncio.wait_for(feed.__anext__(), timeout=15)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            yield b"event: alert\nid: " + str(alert.get("alert_id", "")).encode() + \
                b"\ndata: " + orjson.dumps(alert) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{alert_id}", responses={404: {"model": ErrorBody}})
def get_alert(alert_id: str, storage: StorageDep, _who: PrincipalDep) -> dict[str, Any]:
    a = storage.get_alert(alert_id)
    if a is None:
        raise HTTPException(404, f"unknown alert {alert_id!r}")
    return alert_json(a)


@router.post("/{alert_id}/status",
             responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def change_status(alert_id: str, change: StatusChange, request: Request, storage: StorageDep,
                  who: PrincipalDep) -> dict[str, Any]:
    """Move an alert along new -> acknowledged -> dispatched -> closed (who and when kept)."""
    try:
        updated = move_alert(storage, alert_id, change.status, actor=who.user, note=change.note)
    except NotFound:
        raise HTTPException(404, f"unknown alert {alert_id!r}") from None
    except AlertTransitionError as e:
        raise HTTPException(409, str(e)) from None
    request.app.state.alert_hub.publish_local(alert_message(updated))
    return alert_json(updated)
