"""The role table against the real app: every route is public (an explicit list) or has a
rule; without credentials it answers 401, for each role without the right 403, with the right
neither. A route added without a rule fails here."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.security.roles import PUBLIC, RULES, SCOPES, route_key
from api.settings import ApiSettings
from tests.api.accounts import api_key
from tracker.storage.base import Storage

PERSONS = ("officer", "analyst", "admin")
# sample values for path parameters, and query/body fields every route may ignore
PATH_VALUES = {"tag_id": "AABBCCDD", "reader_id": "rd-a", "alert_id": "stolen_hit:x"}
QUERY = {"reason": "case C-1", "since": "2026-11-28T05:00:00Z", "reader": "rd-a"}
BODY = {"status": "acknowledged", "tag_id": "AABBCCDD", "case_no": "C-1"}
# an endless event stream: its allowed case runs against a real server in test_api_live.py
ENDLESS = {"GET /alerts/stream"}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers' routes too (static
    files are a mount, not routes)."""
    out = []
    for r in iter_route_contexts(app.routes):
        if r.methods and r.path:
            out += [(m, r.path) for m in sorted(r.methods - {"HEAD"})]
    return out


@pytest.fixture
def app(storage: Storage) -> FastAPI:
    return create_app(ApiSettings(db="sqlite:///unused"), storage=storage)


def test_every_route_has_exactly_one_rule(app: FastAPI) -> None:
    keys = [route_key(m, p) for m, p in routes(app)]
    missing = [k for k in keys if k not in RULES and k not in PUBLIC]
    assert not missing, f"routes without a rule in api/security/roles.py: {missing}"
    assert not set(RULES) & PUBLIC
    stale = (set(RULES) | PUBLIC) - set(keys)
    assert not stale, f"rules for routes the app does not have: {stale}"


def call(client: TestClient, method: str, path: str, key: str | None) -> int:
    url = path.format(**PATH_VALUES)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    kw: dict[str, Any] = {"params": QUERY, "headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = BODY
    return client.request(method, url, **kw).status_code


def test_each_role_reaches_what_the_table_says(app: FastAPI, storage: Storage) -> None:
    keys = {role: api_key(storage, f"u-{role}", role) for role in PERSONS}
    with TestClient(app) as client:
        checked = 0
        for method, path in routes(app):
            name = route_key(method, path)
            if name in PUBLIC:
                assert call(client, method, path, None) not in (401, 403), name
                continue
            rule = RULES[name]
            assert call(client, method, path, None) == 401, name
            for role, key in keys.items():
                if role not in rule.roles:
                    assert call(client, method, path, key) == 403, (name, role)
                elif name not in ENDLESS:
                    assert call(client, method, path, key) not in (401, 403), (name, role)
            if "service" not in rule.roles:
                # a service key with every scope but the rule's is refused ...
                other = tuple(s for s in SCOPES if s not in rule.scopes)
                svc = api_key(storage, "svc-other", "service", scopes=other)
                assert call(client, method, path, svc) == 403, (name, other)
            if rule.scopes and name not in ENDLESS:
                # ... and one with a scope of the rule gets through
                svc = api_key(storage, "svc-" + sorted(rule.scopes)[0],
                              "service", scopes=tuple(sorted(rule.scopes)[:1]))
                assert call(client, method, path, svc) not in (401, 403), name
            checked += 1
        assert checked >= len(RULES) - 1  # DELETE and GET /session share one path


def test_a_route_without_a_rule_is_refused(app: FastAPI, storage: Storage) -> None:
    @app.get("/api/v1/unruled")
    def unruled() -> dict[str, str]:
        return {"oops": "reached"}

    key = api_key(storage, "boss", "admin")
    with TestClient(app) as client:
        r = client.get("/api/v1/unruled", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and "no access rule" in r.text
