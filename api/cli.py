"""``pak api``: serve the HTTP API and the web console with uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from api.settings import ApiSettings
from pak import sdnotify
from pak.logs import setup_logging
from pak.settings import load

__all__ = ["main"]

EPILOG = """examples:
  pak users add chen --role admin --db sqlite:///var/lib/pak/pak.sqlite3   # prints a password
  pak api --db sqlite:///var/lib/pak/pak.sqlite3
  pak api --db postgresql://pak@db/pak --mqtt mqtt://broker:1884 --host 0.0.0.0
  pak api --config /etc/pak/api.toml --https-cert /etc/pak/tls/api.crt \\
          --https-key /etc/pak/tls/api.key

Accounts and roles live in the database (pak users; there is no default account). The
console signs in with a name and password (an HttpOnly session cookie); API clients send
'Authorization: Bearer KEY'. Queries about movements need ?reason=... and are written to
the audit log with the user."""


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = load(ApiSettings, "api", argv, prog="pak api",
                       description="HTTP API and web console of pak.", epilog=EPILOG)
    setup_logging(settings.log_level, settings.log_format)
    import uvicorn

    from api import metrics
    from api.app import create_app

    app = create_app(settings)
    metrics.register(app.state.alert_hub)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=False, forwarded_allow_ips=settings.trusted_proxies,
        ssl_certfile=settings.https_cert, ssl_keyfile=settings.https_key)
    server = _notifying_server(config, sdnotify.Notifier())
    server.run()
    return 0 if server.started else 1


def _notifying_server(config: Any, notifier: sdnotify.Notifier) -> Any:
    """uvicorn's server telling systemd (Type=notify): READY once the app has started and its
    socket listens; WATCHDOG from uvicorn's own tick in the event loop (every 0.1 s, so a
    blocked loop stops the pings); STOPPING when it begins to shut down."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                notifier.ready()

        async def on_tick(self, counter: int) -> bool:
            notifier.beat()
            return await super().on_tick(counter)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            notifier.stopping()
            await super().shutdown(sockets)

    return Server(config)
