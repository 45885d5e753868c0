"""Alerts: the list, one alert, its lifecycle, and the live feed (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.alert_hub import FeedItem
from api.deps import PrincipalDep, SettingsDep, StorageDep
from api.security.access import authorize
from api.serialize import alert_json, alert_message
from tracker.alerts.lifecycle import AlertTransitionError
from tracker.storage.base import NotFound, Storage
from tracker.usecases.alerts import move_alert

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Status = Literal["new", "acknowledged", "dispatched", "closed"]


class StatusChange(BaseModel):
    status: Status
    note: str | None = Field(None, max_length=2000)


@router.get("")
def list_alerts(storage: StorageDep, _who: PrincipalDep,
                status: Annotated[list[Status] | None, Query()] = None,
                kind: str | None = None, tag_id: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [alert_json(a) for a in storage.alerts(status=status, kind=kind, tag_id=tag_id,
                                                  limit=limit)]


#: How far before the Last-Event-ID's revision the replay looks: an alert's stored change
#: time is its hit's time, which may precede the revision a tracker stamped when publishing.
REPLAY_SLACK = timedelta(minutes=5)
REPLAY_LIMIT = 1000


def event_id(alert: dict[str, Any]) -> str:
    """``{rev}/{alert_id}``: the revision first, so a reconnecting client's Last-Event-ID
    tells the replay where to start."""
    return f"{alert.get('rev', 0)}/{alert.get('alert_id', '')}"


def _sse(event_name: str, data: dict[str, Any], eid: str | None = None) -> bytes:
    head = b"" if eid is None else b"id: " + eid.replace("\n", " ").encode() + b"\n"
    return head + b"event: " + event_name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _replay(storage: Storage, last_event_id: str) -> list[dict[str, Any]]:
    """The alerts changed since the client's last event, oldest change first (the event it
    saw itself left out); an id that is not ours replays nothing."""
    rev, _, _aid = last_event_id.partition("/")
    if not rev.isdigit() or len(rev) > 15:  # 15 digits: millis until the year 33658
        return []
    since = datetime.fromtimestamp(int(rev) / 1000, UTC) - REPLAY_SLACK
    found = storage.alerts(changed_since=since, limit=REPLAY_LIMIT)
    found.sort(key=lambda a: (a.updated_at, a.alert_id))
    out = [alert_message(a) for a in found]
    return [m for m in out if event_id(m) != last_event_id]


@router.get("/stream")
async def stream(request: Request, who: PrincipalDep, storage: StorageDep,
                 settings: SettingsDep,
                 last_event_id: Annotated[str | None, Header(max_length=300)] = None,
                 ) -> StreamingResponse:
    """Live alerts as server-sent events: ``event: alert`` (``id: {rev}/{alert_id}``),
    ``event: feed`` (``{"live": bool}``: whether the API hears the broker right now) and a
    heartbeat comment every ``feed_heartbeat_s``. After ``Last-Event-ID`` (browsers send it
    when they reconnect) the alerts changed meanwhile are replayed from storage first. The
    feed ends (``event: end``) when the caller's session or key stops being valid."""
    hub = request.app.state.alert_hub
    sub = hub.subscribe()  # before the replay: nothing falls between the two
    replay = await asyncio.to_thread(_replay, storage, last_event_id) if last_event_id else []
    beat = settings.feed_heartbeat_s

    async def events() -> AsyncIterator[bytes]:
        pending: asyncio.Task[FeedItem] | None = None
        try:
            yield b": connected\nretry: 2000\n\n"
            for m in replay:
                yield _sse("alert", m, event_id(m))
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(sub.queue.get())
                # wait without cancelling: the same get() stays pending across heartbeats
                done, _ = await asyncio.wait({pending}, timeout=beat)
                if not done:
                    try:
                        await asyncio.to_thread(authorize, request)
                    except HTTPException as e:
                        yield _sse("end", {"detail": e.detail})
                        return
                    yield b": heartbeat\n\n"
                    continue
                kind, body = pending.result()
                pending = None
                if kind == "alert":
                    yield _sse("alert", body, event_id(body))
                else:
                    yield _sse("feed", body)
        finally:
            if pending is not None:
                pending.cancel()
            hub.unsubscribe(sub)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{alert_id}")
def get_alert(alert_id: str, storage: StorageDep, _who: PrincipalDep) -> dict[str, Any]:
    a = storage.get_alert(alert_id)
    if a is None:
        raise HTTPException(404, f"unknown alert {alert_id!r}")
    return alert_json(a)


@router.post("/{alert_id}/status")
async def change_status(alert_id: str, change: StatusChange, request: Request, storage: StorageDep,
                  who: PrincipalDep) -> dict[str, Any]:
    """Move an alert along new -> acknowledged -> dispatched -> closed (who and when kept)."""
    try:
        updated = await asyncio.to_thread(move_alert, storage, alert_id, change.status,
                                          actor=who.user, note=change.note)
    except NotFound:
        raise HTTPException(404, f"unknown alert {alert_id!r}") from None
    except AlertTransitionError as e:
        raise HTTPException(409, str(e)) from None
    await request.app.state.alert_hub.announce(alert_message(updated))
    return alert_json(updated)
