"""Who may call what: one table, route -> roles (and, for service keys, scopes).

The roles (issue 10):

* ``officer``: the watchlist, alerts, trails and passes;
* ``analyst``: trails, passes and statistics; no watchlist (it holds owners' contact
  details) and no change to alerts;
* ``admin``: accounts, readers and gateways, audit, retention, metrics; no movements;
* ``service``: a system with an API key whose scopes name what it may do (a stolen-report
  system that may only write the watchlist holds ``watchlist:write``).

A route is named by its method and its path relative to the API root, so the table holds
"GET /alerts" for ``/api/v1/alerts``.
Every route of the app is either in :data:`RULES` or in :data:`PUBLIC`; the dependency in
:mod:`api.security.access` refuses a route in neither (fail closed), and a test enumerates the
app's routes so a new route without a rule fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["API_ROOTS", "PUBLIC", "RULES", "SCOPES", "Rule", "route_key"]

#: Prefixes of the API's routes, stripped to make a route's key.
API_ROOTS: Final = ("/api/v1",)

#: What a service key may be allowed to do.
SCOPES: Final = ("alerts:read", "watchlist:read", "watchlist:write", "stats:read",
                 "metrics:read")


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[str]
    scopes: frozenset[str] = frozenset()

    def allows(self, role: str, scopes: tuple[str, ...]) -> bool:
        """A person's role must be listed; a service key needs one of the rule's scopes
        (or the rule lists ``service`` itself: any service key)."""
        if role in self.roles:
            return True
        return role == "service" and not self.scopes.isdisjoint(scopes)


def _rule(*roles: str, scopes: tuple[str, ...] = ()) -> Rule:
    return Rule(frozenset(roles), frozenset(scopes))


_MOVEMENTS: Final = _rule("officer", "analyst")  # audited queries about where a tag was
_INFRA: Final = _rule("officer", "analyst", "admin")  # readers and gateways: no personal data
_ALERTS_READ: Final = _rule("officer", scopes=("alerts:read",))
_WATCH_READ: Final = _rule("officer", scopes=("watchlist:read",))
_WATCH_WRITE: Final = _rule("officer", scopes=("watchlist:write",))
_SIGNED_IN: Final = _rule("officer", "analyst", "admin", "service")

RULES: Final[dict[str, Rule]] = {
    # who am I (sign-out needs a session; a key simply stops being used)
    "GET /session": _SIGNED_IN,
    "DELETE /session": _SIGNED_IN,
    "GET /me": _SIGNED_IN,
    # trails and who passed where (each call audited with its reason)
    "GET /tags/{tag_id}/trail": _MOVEMENTS,
    "GET /tags/{tag_id}/companions": _MOVEMENTS,
    "GET /readers/{reader_id}/passes": _MOVEMENTS,
    "GET /passes": _MOVEMENTS,
    # readers, gateways and the console's numbers
    "GET /readers": _INFRA,
    "GET /readers/{reader_id}": _INFRA,
    "GET /gateways": _INFRA,
    "GET /stats": _rule("officer", "analyst", "admin", scopes=("stats:read",)),
    # alerts: officers act on them; a dispatch system may read them
    "GET /alerts": _ALERTS_READ,
    "GET /alerts/stream": _ALERTS_READ,
    "GET /alerts/{alert_id}": _ALERTS_READ,
    "POST /alerts/{alert_id}/status": _rule("officer"),
    "POST /alerts/{alert_id}/acknowledge": _rule("officer"),
    "POST /alerts/{alert_id}/dispatch": _rule("officer"),
    "POST /alerts/{alert_id}/close": _rule("officer"),
    # the watchlist (notes hold owners' contact details: not for analysts)
    "GET /watchlist": _WATCH_READ,
    "POST /watchlist": _WATCH_WRITE,
    "POST /watchlist/import": _WATCH_WRITE,
    "DELETE /watchlist/{tag_id}": _WATCH_WRITE,
    # the console's settings (time zone, base map) and its offline roads layer
    "GET /console/config": _SIGNED_IN,
    "GET /console/roads": _SIGNED_IN,
    # operations
    "GET /users": _rule("admin"),
    "GET /audit": _rule("admin"),
    "GET /metrics": _rule("admin", scopes=("metrics:read",)),
}

#: Routes anyone may call: health, the console's page (its static files are a mount, outside
#: the routes), signing in, and the API's own description.
PUBLIC: Final = frozenset({
    "GET /healthz",
    "GET /",
    "GET /console",
    "POST /session",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
})


def route_key(method: str, path: str) -> str:
    """The table's name of a route: ``"GET /alerts/{alert_id}"`` for ``/api/v1/alerts/...``.
    HEAD is looked up as GET (it is a GET without a body)."""
    for root in API_ROOTS:
        if path.startswith(root + "/"):
            path = path[len(root):]
            break
    return f"{'GET' if method == 'HEAD' else method} {path}"
