"""Alerts: the list, one alert, its lifecycle, and the live feed (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.alert_hub import FeedItem
from api.deps import PrincipalDep, SettingsDep, StorageDep
from api.errors import ErrorBody
from api.security.access import Principal, authorize
from api.serialize import alert_json, alert_message
from pak.timefmt import format_time
from pak.types import SightingId
from tracker.alerts.lifecycle import AlertTransitionError
from tracker.storage.base import NotFound, Storage
from tracker.storage.records import StoredAlert
from tracker.usecases.alerts import AlertActionError, move_alert

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Status = Literal["new", "acknowledged", "dispatched", "closed"]


#: What an alert action may answer besides success (documented on each action route).
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody},
                                                  409: {"model": ErrorBody}}
Outcome = Literal["recovered", "not_found", "false_alarm"]  # tracker.usecases.alerts.OUTCOMES
Note = Annotated[str | None, Field(None, max_length=2000, description="the officer's words")]


class Acknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = None


class Dispatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = Field(min_length=1, max_length=100, description="the unit sent, e.g. 巡逻车 12")
    note: Note = None


class Close(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: Note = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    note: Note = None
    unit: str | None = Field(None, max_length=100)
    outcome: Outcome | None = None


def _pass(storage: Storage, sid: SightingId) -> dict[str, Any] | None:
    s = storage.get_sighting(sid)
    if s is None:  # the hit is published before its batch is stored
        return None
    return {"sighting": [sid.gateway_id, sid.spool_id, sid.seq], "reader_id": s.reader_id,
            "first_seen": format_time(s.first_seen), "last_seen": format_time(s.last_seen)}


def _resource(storage: Storage, a: StoredAlert) -> dict[str, Any]:
    """An alert resource: the stored alert (history included) with its first and latest
    sighting, each with its own reader and times (the alert's reader follows the latest)."""
    out = alert_json(a)
    out["first_sighting"] = _pass(storage, a.sightings[0]) if a.sightings else None
    out["latest_sighting"] = (out["first_sighting"] if len(a.sightings) == 1 else
                              _pass(storage, a.sightings[-1]) if a.sightings else None)
    return out


@router.get("")
def list_alerts(storage: StorageDep, _who: PrincipalDep,
                status: Annotated[list[Status] | None, Query()] = None,
                kind: str | None = None, tag_id: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return [_resource(storage, a) for a in storage.alerts(status=status, kind=kind, tag_id=tag_id,
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


@router.get("/{alert_id}", responses={404: {"model": ErrorBody}})
def get_alert(alert_id: str, storage: StorageDep, _who: PrincipalDep) -> dict[str, Any]:
    a = storage.get_alert(alert_id)
    if a is None:
        raise HTTPException(404, f"未知警报 (unknown alert {alert_id!r})")
    return _resource(storage, a)


async def _move(request: Request, storage: Storage, who: Principal, alert_id: str, to: str,
                *, note: str | None, unit: str | None = None,
                outcome: str | None = None) -> dict[str, Any]:
    """Every action goes through the one use case; the change reaches every API instance."""
    try:
        updated = await asyncio.to_thread(move_alert, storage, alert_id, to, actor=who.user,
                                          note=note, unit=unit, outcome=outcome)
    except NotFound:
        raise HTTPException(404, f"未知警报 (unknown alert {alert_id!r})") from None
    except AlertActionError as e:
        raise HTTPException(422, str(e)) from None
    except AlertTransitionError as e:
        raise HTTPException(409, str(e)) from None
    await request.app.state.alert_hub.announce(alert_message(updated))
    return _resource(storage, updated)


@router.post("/{alert_id}/acknowledge", responses=ACTION_ERRORS)
async def acknowledge(alert_id: str, body: Acknowledge, request: Request, storage: StorageDep,
                      who: PrincipalDep) -> dict[str, Any]:
    """An officer has seen the alert (签收)."""
    return await _move(request, storage, who, alert_id, "acknowledged", note=body.note)


@router.post("/{alert_id}/dispatch", responses=ACTION_ERRORS)
async def dispatch(alert_id: str, body: Dispatch, request: Request, storage: StorageDep,
                   who: PrincipalDep) -> dict[str, Any]:
    """A unit is sent (出警): its name is kept in the history."""
    return await _move(request, storage, who, alert_id, "dispatched", unit=body.unit,
                       note=body.note)


@router.post("/{alert_id}/close", responses=ACTION_ERRORS)
async def close(alert_id: str, body: Close, request: Request, storage: StorageDep,
                who: PrincipalDep) -> dict[str, Any]:
    """The alert ends (结案) with its outcome: recovered, not_found or false_alarm."""
    return await _move(request, storage, who, alert_id, "closed", outcome=body.outcome,
                       note=body.note)


@router.post("/{alert_id}/status", responses=ACTION_ERRORS)
async def change_status(alert_id: str, change: StatusChange, request: Request,
                        storage: StorageDep, who: PrincipalDep) -> dict[str, Any]:
    """Move an alert along new -> acknowledged -> dispatched (unit) -> closed (outcome): the
    same rule as the three action routes."""
    return await _move(request, storage, who, alert_id, change.status, note=change.note,
                       unit=change.unit, outcome=change.outcome)
