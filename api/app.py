"""The API application, built in :func:`create_app`: nothing is opened at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

from fastapi import FastAPI

from api import errors, openapi
from api.alert_hub import AlertHub
from api.console import install as install_console
from api.middleware.guard import InputGuard
from api.middleware.metrics import RequestMetrics
from api.routers import alerts, audit, readers, system, tags, watchlist
from api.security.access import install as install_security
from api.settings import ApiSettings
from pak.key_settings import require_keys
from pak.logs import event
from pak.mqtt import CENTRE_BACKOFF, make_client
from pak.wire.topics import Topics
from tracker.storage import open_storage
from tracker.storage.base import Storage
from tracker.usecases.audit import log_head
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


#: The largest request body the API accepts: the watchlist CSV import's own limit (4 MiB,
#: about 50,000 rows) and room for its multipart or header overhead; every other body is
#: under 10 kB.
MAX_BODY_BYTES: Final = 5 << 20
#: How often the audit chain's head is written to the log (and once at start).
AUDIT_HEAD_EVERY_S: Final = 300.0


async def _log_audit_head(storage: Storage, every_s: float) -> None:
    """Log the chain's head now and then: a rewrite of the chain after a logged head is caught
    by comparing the logged hashes (signing the head waits for the signing keys)."""
    while True:
        try:
            await asyncio.to_thread(log_head, storage)
        except Exception as e:  # the database may be away: try again next time
            event(log, logging.WARNING, "audit_head_unavailable", error=str(e))
        await asyncio.sleep(every_s)


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
        heads = asyncio.create_task(_log_audit_head(app.state.storage, AUDIT_HEAD_EVERY_S))
        event(log, logging.INFO, "api_started", db=settings.db.split("@")[-1])
        try:
            yield
        finally:
            heads.cancel()
            await app.state.alert_hub.stop()
            if closer:
                closer()
            if own:
                app.state.storage.close()

    app = FastAPI(title="pak API", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # served offline by api.openapi
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
    for r in (readers.router, tags.router, alerts.router, watchlist.router, system.router,
              audit.router):
        app.include_router(r)
    errors.install(app)
    openapi.install(app, secure_cookie=settings.secure_cookie)
    # outermost first: metrics see every answer, the guard's refusals included; the guard
    # answers before routing, authentication or reading a body
    app.add_middleware(InputGuard, max_body=MAX_BODY_BYTES)
    app.add_middleware(RequestMetrics)

    install_console(app)  # the page, its files, Leaflet, the console's config

    return app
