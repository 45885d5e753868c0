"""The web console as the API serves it: its page and files, Leaflet from the installed
``XStatic-Leaflet`` package, and the two small routes the console reads after sign-in
(its settings, and the operator's roads GeoJSON as the offline base map).

Invariants: nothing the console loads comes from another site (no CDN: the API's machine may
have no Internet access), and no map library is copied into the repository: Leaflet's files
are served from the installed package, under ``/static/vendor/leaflet/``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from api.settings import ApiSettings

__all__ = ["ConsoleConfig", "install", "router"]

VENDOR_LEAFLET = "/static/vendor/leaflet"

router = APIRouter(prefix="/api/v1/console", tags=["console"])


class ConsoleConfig(BaseModel):
    timezone: str = Field(description="IANA zone the console shows times in")
    tile_url: str | None = Field(description="base map tile template ({z}/{x}/{y}), or null")
    roads_url: str | None = Field(description="where the roads GeoJSON is, or null")


@router.get("/config", response_model=ConsoleConfig)
def console_config(request: Request) -> ConsoleConfig:
    s: ApiSettings = request.app.state.settings
    return ConsoleConfig(timezone=s.timezone, tile_url=s.tile_url,
                         roads_url="/api/v1/console/roads" if s.roads_geojson else None)


@router.get("/roads", response_class=FileResponse,
            responses={404: {"description": "no roads GeoJSON configured"}})
def roads(request: Request) -> FileResponse:
    s: ApiSettings = request.app.state.settings
    if s.roads_geojson is None:
        raise HTTPException(404, "没有配置道路图层 (no roads_geojson configured)")
    return FileResponse(str(s.roads_geojson), media_type="application/geo+json")


def leaflet_dir() -> str:
    """Where the installed XStatic-Leaflet keeps leaflet.js, leaflet.css and images/."""
    from xstatic.pkg import leaflet

    return str(leaflet.BASE_DIR)


def install(app: FastAPI) -> None:
    """Mount the console on ``app``: ``/`` (the page), ``/static/`` and Leaflet."""
    app.include_router(router)
    static = resources.files("api").joinpath("static")
    # the more specific mount first: /static would otherwise answer for the vendor path
    app.mount(VENDOR_LEAFLET, StaticFiles(directory=leaflet_dir()), name="leaflet")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static.joinpath("index.html")),
                            headers={"Cache-Control": "no-cache"})

    @app.get("/console", include_in_schema=False)
    def console() -> RedirectResponse:
        return RedirectResponse("/")
