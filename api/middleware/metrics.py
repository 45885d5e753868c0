"""Request metrics of the API, by route template (``/api/v1/tags/{tag_id}/trail``, never the
raw path: one series per route, not per tag), and the live feed's clients and pushed alerts.

Measured here, around the whole app, so every route is counted the same way and no router
needs to know: the route template is what Starlette's router left in the ASGI scope; a live
feed client is a request in progress on a ``text/event-stream`` response; an alert pushed is
one ``event: alert`` written to such a response. The metrics are process-wide (one registry,
as a scrape sees one process); requests that matched no route count as ``<unmatched>``.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALERTS_PUSHED", "FEED_CLIENTS", "LATENCY", "REQUESTS", "RequestMetrics"]

REQUESTS: Final = Counter("pak_api_requests", "HTTP requests answered, by route and status",
                          ("method", "route", "status"))
LATENCY: Final = Histogram("pak_api_request_seconds", "Time to answer (for the live feed: "
                           "how long the client stayed)", ("method", "route"),
                           buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5,
                                    10, 60, 600))
FEED_CLIENTS: Final = Gauge("pak_api_live_feed_clients", "Clients connected to the live feed")
ALERTS_PUSHED: Final = Counter("pak_api_alerts_pushed", "Alerts written to live feed clients")

_UNMATCHED: Final = "<unmatched>"


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        streaming = False

        async def observe(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                ctype = dict(message.get("headers", ())).get(b"content-type", b"")
                if ctype.startswith(b"text/event-stream"):
                    streaming = True
                    FEED_CLIENTS.inc()
            elif streaming and message["type"] == "http.response.body":
                pushed = message.get("body", b"").count(b"event: alert\n")
                if pushed:
                    ALERTS_PUSHED.inc(pushed)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            if streaming:
                FEED_CLIENTS.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or _UNMATCHED
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)
