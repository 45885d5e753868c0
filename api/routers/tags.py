"""One tag: its trail (GeoJSON, CSV or JSON) and the tags seen travelling with it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response

from api.deps import AuditDep, SettingsDep, StorageDep, WindowDep
from api.models import Companion
from pak.timefmt import format_time
from tracker.trails.queries import readers_for, seen_together, trail
from tracker.trails.trail import trail_csv, trail_geojson, trail_json

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])

_TAG = re.compile(r"[0-9A-Fa-f]{2,64}")
TagPath = Annotated[str, Path(description="tag id, hex", min_length=2, max_length=64,
                              pattern=f"^{_TAG.pattern}$")]


def _tag(tag_id: str) -> str:
    if not _TAG.fullmatch(tag_id):
        raise HTTPException(422, "tag_id: hex digits only (e.g. E200301666130121155074EF)")
    return tag_id.upper()


@router.get("/{tag_id}/trail", response_model=None, responses={200: {"content": {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}}}}})
def get_trail(tag_id: TagPath, storage: StorageDep, settings: SettingsDep, window: WindowDep,
              audit: AuditDep,
              format: Annotated[Literal["geojson", "csv", "json"], Query(
                  description="geojson (default: a Point per pass, a LineString per hop with "
                  "speed_kmh and implausible), csv (a row per pass) or json (trips)")
              ] = "geojson") -> dict[str, Any] | Response:
    """The tag's trail in the window (default: the last 24 hours): passes in time order,
    trips split at gaps, hops with distance, speed and heading; implausible hops flagged
    (audited)."""
    tag = _tag(tag_id)
    audit("trail", tag_id=tag, since=window.since, until=window.until, format=format)
    t = trail(storage, tag_id=tag, since=window.since, until=window.until,
              trip_gap=timedelta(seconds=settings.trip_gap_s),
              max_speed_kmh=settings.max_speed_kmh)
    if format == "csv":
        return Response(trail_csv(t), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="trail-{tag}.csv"'})
    if format == "json":
        return trail_json(t)
    return trail_geojson(t, readers_for(storage, [p.reader_id for p in t.passes]))


@router.get("/{tag_id}/companions", response_model=list[Companion])
def companions(tag_id: TagPath, storage: StorageDep, window: WindowDep, audit: AuditDep,
               within_s: Annotated[float, Query(gt=0, le=600)] = 30.0,
               min_times: Annotated[int, Query(ge=2, le=100)] = 2) -> list[dict[str, Any]]:
    """Tags that passed the same readers within seconds of this one, more than once (audited)."""
    tag = _tag(tag_id)
    audit("seen_together", tag_id=tag, since=window.since, until=window.until,
          within_s=within_s, min_times=min_times)
    out = seen_together(storage, tag_id=tag, since=window.since, until=window.until,
                        within_s=within_s, min_times=min_times)
    return [{"tag_id": c.tag_id, "times": c.times, "readers": list(c.readers),
             "occasions": [{"reader_id": o.reader_id, "tag_at": format_time(o.tag_at),
                            "other_at": format_time(o.other_at), "delta_s": o.delta_s}
                           for o in c.occasions]} for c in out]
