"""``pak api``: serve the HTTP API and the web console with uvicorn."""

from __future__ import annotations

from collections.abc import Sequence

from api.settings import ApiSettings
from pak.logs import setup_logging
from pak.settings import load

__all__ = ["main"]

EPILOG = """examples:
  pak users add chen --role admin --db sqlite:///var/lib/pak/pak.sqlite3   # prints a password
  pak api --db sqlite:///var/lib/pak/pak.sqlite3
  pak api --db postgresql://pak@db/pak --mqtt mqtt://broker:1883 --host 0.0.0.0

Accounts and roles live in the database (pak users; there is no default account). The
console signs in with a name and password (an HttpOnly session cookie); API clients send
'Authorization: Bearer KEY'. Queries about movements need ?reason=... and are written to
the audit log with the user."""


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = load(ApiSettings, "api", argv, prog="pak api",
                       description="HTTP API and web console of pak.", epilog=EPILOG)
    setup_logging(settings.log_level, settings.log_format)
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False)
    return 0
