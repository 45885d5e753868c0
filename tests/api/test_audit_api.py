"""Audit through the API: one chained record per audited query, with the caller's role and
address; the query refused (503) when its record cannot be written; ``GET /api/v1/audit`` for
admins only, with its filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pak.timefmt import format_time, utcnow
from tests.api.accounts import api_key
from tracker.storage.base import Storage
from tracker.usecases.audit import verify_chain


def _path(app: FastAPI, suffix: str) -> str:
    return next(str(p) for p in app.openapi()["paths"] if p.endswith(suffix))


def _trail(app: FastAPI, client: TestClient, key: str, reason: str) -> Any:
    return client.get(_path(app, "/tags/{tag_id}/trail").format(tag_id="AABBCCDD"),
                      params={"reason": reason, "since": format_time(utcnow() - timedelta(1))},
                      headers={"Authorization": f"Bearer {key}"})


def test_one_chained_record_per_audited_query(app: FastAPI, client: TestClient,
                                              storage: Storage) -> None:
    officer = api_key(storage, "wang", "officer")
    for reason in ("案件 A-1", "案件 A-2"):
        assert _trail(app, client, officer, reason).status_code == 200
    records = storage.audit_chain()
    assert [(e.actor, e.role, e.client, e.action, e.reason) for e in records] == [
        ("wang", "officer", "testclient", "trail", "案件 A-1"),
        ("wang", "officer", "testclient", "trail", "案件 A-2")]
    assert records[0].params["tag_id"] == "AABBCCDD"
    assert verify_chain(storage).intact


def test_no_record_no_query(app: FastAPI, client: TestClient, storage: Storage,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    officer = api_key(storage, "wang", "officer")

    def broken(**_kw: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "append_audit", broken)
    r = _trail(app, client, officer, "案件 A-3")
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert "features" not in r.text and "passes" not in r.text


def test_audit_list_is_for_admins_with_filters(app: FastAPI, client: TestClient,
                                               storage: Storage) -> None:
    officer = api_key(storage, "wang", "officer")
    admin = api_key(storage, "root", "admin")
    _trail(app, client, officer, "案件 B-1")
    path = _path(app, "/audit")
    assert client.get(path, headers={"Authorization": f"Bearer {officer}"}).status_code == 403
    got = client.get(path, params={"actor": "wang", "action": "trail"},
                     headers={"Authorization": f"Bearer {admin}"})
    assert got.status_code == 200
    [rec] = got.json()
    assert (rec["actor"], rec["role"], rec["reason"]) == ("wang", "officer", "案件 B-1")
    assert rec["hash"] == storage.audit_head().hash  # type: ignore[union-attr]
    none = client.get(path, params={"actor": "li"}, headers={"Authorization": f"Bearer {admin}"})
    assert none.json() == []
    now = utcnow()
    bad = client.get(path, params={"since": format_time(now), "until": format_time(now)},
                     headers={"Authorization": f"Bearer {admin}"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid"
