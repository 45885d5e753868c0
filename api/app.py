"""The API application, built in :func:`create_app`: nothing is opened at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.alert_hub import AlertHub
from api.console import install as install_console
from api.routers import alerts, readers, system, tags, watchlist
from api.security.access import install as install_security
from api.settings import ApiSettings
from pak.key_settings import require_keys
from pak.logs import event
from pak.mqtt import CENTRE_BACKOFF, make_client
from pak.wire.topics import Topics
from tracker.storage import open_storage
from tracker.storage.base import Storage, StorageUnavailable
from tracker.usecases.watchlist import watchlist_announcer

__all__ = ["create_app"]

log = logging.getLogger("pak.api")


def _announcer(settings: ApiSettings) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """A long-lived MQTT client for watchlist announcements (QoS 1; paho queues while the
    broker is away and the trackers' periodic reload heals anything lost)."""
    c = make_client(settings.broker(), backoff=CENTRE_BACKOFF,
                    protocol="3.1.1" if settings.mqtt_protocol == "3.1.1" else "5")
    c.start(60)
    announce = watchlist_announcer(lambda t, p, q: c.publish(t, p, qos=q),
                                   Topics(settings.topic_root), settings.signer("api"))

    def close() -> None:
        c.disconnect()
        c.loop_stop()

    return announce, close


def create_app(settings: ApiSettings, *, storage: Storage | None = None) -> FastAPI:
    """Build the API for ``settings``. ``storage`` may be given (tests); otherwise it is opened
    from ``settings.db`` when the app starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = storage is None
        app.state.storage = storage or open_storage(settings.db)
        if own:
            app.state.storage.migrate()
        closer = None
        if settings.mqtt:
            app.state.announcer, closer = _announcer(settings)
        await app.state.alert_hub.start()
        event(log, logging.INFO, "api_started", db=settings.db.split("@")[-1])
        try:
            yield
        finally:
            await app.state.alert_hub.stop()
            if closer:
                closer()
            if own:
                app.state.storage.close()

    app = FastAPI(title="pak API", version="1", lifespan=lifespan,
                  description="Trails, who passed here, live alerts and the watchlist. "
                  "Every query about movements needs a reason and is audited.")
    app.state.settings = settings
    signer = settings.signer("api")
    if settings.mqtt:
        require_keys("api", "signing_key", settings.broker(), signer is not None)
    app.state.alert_hub = AlertHub(settings.broker() if settings.mqtt else None,
                                   settings.topic_root, backoff=CENTRE_BACKOFF,
                                   protocol=settings.mqtt_protocol,
                                   verifier=None if signer is None else signer.verifier(),
                                   signer=signer)
    app.state.announcer = None
    app.state.stats_cache = {}
    install_security(app)  # every route below is guarded by the role table
    for r in (readers.router, tags.router, alerts.router, watchlist.router, system.router):
        app.include_router(r)

    install_console(app)  # the page, its files, Leaflet, the console's config

    @app.exception_handler(StorageUnavailable)
    async def unavailable(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # one readable line per problem: "query.since: Field required"
        problems: list[dict[str, Any]] = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
            for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    return app
