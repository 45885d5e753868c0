"""The tracker's ``/healthz``, served beside ``/metrics`` on the metrics port.

prometheus_client's HTTP server answers every path with the metrics; :func:`add_healthz`
puts a small WSGI app in front of it that answers ``/healthz`` with JSON from a callable and
passes every other path on, so one port serves both and no second server is started.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["add_healthz", "healthz_app"]


def healthz_app(inner: WSGIApplication, health: Callable[[], dict[str, Any]]) -> WSGIApplication:
    """``/healthz`` answered from ``health()``; anything else by ``inner``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return inner(environ, start_response)
        body = json.dumps(health(), default=str).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def add_healthz(server: WSGIServer, health: Callable[[], dict[str, Any]]) -> None:
    """Serve ``/healthz`` on ``server`` (the metrics server) beside what it serves."""
    inner = server.get_app()
    assert inner is not None
    server.set_app(healthz_app(inner, health))
