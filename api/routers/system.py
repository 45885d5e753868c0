"""Who am I, the numbers at the top of the console, gateways, health and metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import PrincipalDep, StorageDep
from api.models import GatewayInfo, Health, Me, Stats
from api.serialize import gateway_json
from tracker.alerts.lifecycle import OPEN_STATUSES

router = APIRouter(tags=["system"])

_STATS_TTL_S = 10.0  # counting a hypertable is not free: one count per 10 s at most


@router.get("/api/v1/me", response_model=Me)
def me(who: PrincipalDep) -> dict[str, str]:
    return {"user": who.user, "role": who.role}


@router.get("/api/v1/gateways", response_model=list[GatewayInfo])
def gateways(storage: StorageDep, _who: PrincipalDep) -> list[dict[str, Any]]:
    return [gateway_json(g) for g in storage.gateways()]


@router.get("/api/v1/stats", response_model=Stats)
def stats(request: Request, storage: StorageDep, _who: PrincipalDep) -> dict[str, Any]:
    cache = request.app.state.stats_cache
    now = time.monotonic()
    if cache.get("at", -1e9) + _STATS_TTL_S < now:
        gws = storage.gateways()
        cache.update(at=now, value={
            "sightings": storage.count_sightings(),
            "readers": len(storage.readers()),
            "gateways": len(gws),
            "gateways_online": sum(g.state == "online" for g in gws),
            "alerts_open": len(storage.alerts(status=list(OPEN_STATUSES), limit=10_000)),
            "dead_letters": storage.count_dead_letters(),
        })
    value: dict[str, Any] = cache["value"]
    return value


@router.get("/healthz", response_model=Health)
def healthz(request: Request) -> dict[str, Any]:
    hub = request.app.state.alert_hub
    return {"ok": True, "alert_feed": "connected" if hub.connected else (
        "off" if hub.mqtt_url is None else "reconnecting")}


@router.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
