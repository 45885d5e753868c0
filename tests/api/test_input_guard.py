"""Bad input gets a 4xx before the app does any work: bodies over the limit are refused before
one byte is read (and before authentication); NUL and control characters in any text
parameter or body field give 422; every refusal has the one error body."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import MAX_BODY_BYTES, create_app
from api.settings import ApiSettings
from tests.api.accounts import api_key
from tracker.storage.base import Storage

ERROR_KEYS = {"error", "message", "detail"}
SAMPLE = {"tag_id": "AABBCCDD", "reader_id": "rd-a", "alert_id": "stolen_hit:x"}


@pytest.fixture
def app(storage: Storage) -> FastAPI:
    return create_app(ApiSettings(db="sqlite:///unused"), storage=storage)


def _path_of(app: FastAPI, suffix: str, method: str = "POST") -> str:
    for path, item in app.openapi()["paths"].items():
        if path.endswith(suffix) and method.lower() in item:
            return str(path)
    raise AssertionError(f"no {method} route ending {suffix}")


def _post(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]],
          chunks: int, chunk: bytes) -> tuple[int, dict[str, Any] | None, int]:
    """POST through the ASGI app itself; returns the status, the JSON body and how many body
    messages the app asked for."""
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": chunk, "more_body": asked < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    import orjson

    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(body) if body else None, asked


def test_a_huge_declared_body_is_refused_unread_and_before_authentication(app: FastAPI) -> None:
    path = _path_of(app, "/watchlist")
    # 300 MB declared, no credentials: answered 413 without asking for a single body byte
    status, body, asked = _post(app, path, [(b"content-type", b"application/json"),
                                            (b"content-length", str(300 << 20).encode())],
                                chunks=300 << 4, chunk=b"x" * 65536)
    assert status == 413 and asked == 0
    assert body is not None and set(body) == ERROR_KEYS and body["error"] == "payload_too_large"


def test_a_streamed_body_is_cut_at_the_limit(app: FastAPI) -> None:
    path = _path_of(app, "/watchlist")
    chunk = b"x" * 65536
    status, body, asked = _post(app, path, [(b"content-type", b"application/json"),
                                            (b"transfer-encoding", b"chunked")],
                                chunks=300 << 4, chunk=chunk)
    assert status == 413 and body is not None and body["error"] == "payload_too_large"
    assert asked == MAX_BODY_BYTES // len(chunk) + 1  # not one chunk more than the limit


def _text_parameters(app: FastAPI) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every string parameter the API documents."""
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            for p in op.get("parameters", ()):
                schema = p.get("schema", {})
                types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", ())}
                items = schema.get("items", {}).get("type")
                if "string" in types or items == "string" or (
                        "array" in types and items is None):
                    out.append((method.upper(), path, p["in"], p["name"]))
    return out


def test_nul_in_every_text_parameter_is_refused(app: FastAPI, storage: Storage) -> None:
    params = _text_parameters(app)
    assert len(params) >= 8  # trails, passes, alerts, watchlist, audit...
    key = api_key(storage, "boss", "admin")
    client = TestClient(app)  # the guard answers before routing: no lifespan needed
    for method, path, where, name in params:
        for bad in ("A\x00B", "case\x07", "x\x1by"):
            values = dict(SAMPLE)
            query: dict[str, str] = {}
            if where == "path":
                values[name] = quote(bad, safe="")
            else:
                query[name] = bad
            url = path.format(**{k: values.get(k, "x") for k in _names(path)})
            r = client.request(method, url, params=query,
                               headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 422, (method, path, name, bad, r.status_code)
            assert set(r.json()) == ERROR_KEYS and r.json()["error"] == "invalid"


def _names(path: str) -> list[str]:
    import re

    return re.findall(r"{(\w+)}", path)


def test_control_characters_in_a_json_body_are_refused(app: FastAPI, storage: Storage) -> None:
    key = api_key(storage, "desk", "officer")
    path = _path_of(app, "/watchlist")
    with TestClient(app) as client:
        r = client.post(path, json={"tag_id": "AABB", "case_no": "C-1\u0000", "note": ""},
                        headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 422 and r.json()["detail"][0]["where"] == "body"
        r = client.post(path, json={"tag_id": "AABB", "case_no": "C-1",
                                    "note": "line 1\nline 2"},
                        headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 201  # newlines in a note are text, not control


def test_every_refusal_has_the_one_error_body(app: FastAPI, storage: Storage) -> None:
    with TestClient(app) as client:
        _refusals(app, storage, client)


def _refusals(app: FastAPI, storage: Storage, client: TestClient) -> None:
    reader = _path_of(app, "/readers/{reader_id}", "GET").format(reader_id="nope")
    r = client.get(reader)
    assert r.status_code == 401 and set(r.json()) == ERROR_KEYS
    assert r.json()["error"] == "unauthorized"
    key = api_key(storage, "desk", "officer")
    auth = {"Authorization": f"Bearer {key}"}
    r = client.get(reader, headers=auth)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert "nope" in r.json()["message"]
    r = client.get(_path_of(app, "/passes", "GET"), headers=auth,
                   params={"reason": "case", "limit": "0", "reader": "rd-a"})
    assert r.status_code == 422 and r.json()["error"] == "invalid"
    assert "query.limit" in {p["where"] for p in r.json()["detail"]}
