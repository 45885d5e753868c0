"""The API's description fits a client generator, its docs work offline, and ``/metrics``
(Prometheus text, for admins and metrics keys) counts requests by route template."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.security.roles import PUBLIC, route_key
from tests.api.accounts import api_key
from tracker.storage.base import Storage


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_security_schemes_and_one_error_body(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        public = route_key(method, path) in PUBLIC
        assert op["security"] == ([] if public else [{"bearerKey": []}, {"sessionCookie": []}])
        if not public:
            assert {"401", "403"} <= set(op["responses"]), (method, path)
        for status, resp in op["responses"].items():
            if status[0] in "45":
                assert resp["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_metrics_is_text_and_not_json(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def test_docs_are_served_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for a in assets:
        assert client.get(a).status_code == 200, a
    assert "https://" not in page.text and "http://" not in page.text
    assert client.get("/redoc", follow_redirects=False).headers["location"] == "/docs"


def test_metrics_count_requests_by_route_template(app: FastAPI, client: TestClient,
                                                  storage: Storage) -> None:
    reader = next(p for p in app.openapi()["paths"] if p.endswith("/readers/{reader_id}"))
    officer = api_key(storage, "wang", "officer")
    admin = api_key(storage, "root", "admin")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {officer}"}
                      ).status_code == 403

    def count() -> float:
        text = client.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).text
        line = re.search(r'^pak_api_requests_total\{method="GET",route="' + re.escape(reader)
                         + r'",status="404"\} (\S+)$', text, re.M)
        return float(line.group(1)) if line else 0.0

    before = count()
    for rid in ("nope-1", "nope-2", "nope-3"):  # three readers, one series: the template
        client.get(reader.format(reader_id=rid), headers={"Authorization": f"Bearer {officer}"})
    assert count() == before + 3
