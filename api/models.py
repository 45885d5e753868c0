"""Response models of the routes whose answer is the API's own (not a wire record): who am I,
the console's numbers, gateways, health, pages of passes, companions, a watchlist change.
Wire records (readers, watchlist entries, alerts) keep their models in ``pak/wire/``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["Companion", "GatewayInfo", "Health", "Me", "Occasion", "PassesPage", "Stats",
           "WatchlistChange"]


class Me(BaseModel):
    user: str
    role: str


class GatewayInfo(BaseModel):
    gateway_id: str
    state: str | None = Field(description="online or offline (null: never reported)")
    state_at: str | None
    health: dict[str, Any] | None = Field(description="the gateway's last health report")
    health_at: str | None


class Stats(BaseModel):
    sightings: int
    readers: int
    gateways: int
    gateways_online: int
    alerts_open: int
    dead_letters: int


class Health(BaseModel):
    ok: bool
    alert_feed: Literal["connected", "off", "reconnecting"]


class PassesPage(BaseModel):
    reader_ids: list[str]
    since: str
    until: str
    truncated: bool = Field(description="more passes than the limit: narrow the window")
    passes: list[dict[str, Any]] = Field(description="sightings (the wire's sighting object "
                                         "with gateway_id, spool_id and direction)")


class Occasion(BaseModel):
    reader_id: str
    tag_at: str
    other_at: str
    delta_s: float


class Companion(BaseModel):
    tag_id: str
    times: int
    readers: list[str]
    occasions: list[Occasion]


class WatchlistChange(BaseModel):
    tag_id: str
    changed: int = Field(description="how many entries changed")
    status: Literal["recovered", "withdrawn"]
