"""The HTTP API over real SQLite storage: auth, audit, validation, trails, who passed here,
alerts lifecycle, watchlist. The live feed runs through a real server and broker in
test_api_live.py."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from pak.errors import ConfigError
from pak.timefmt import format_time, parse_time, utcnow
from pak.types import Sighting, SightingId
from pak.wire.alert import alert_json, reader_record_json
from pak.wire.common import TIME_RE
from tests.api.accounts import api_key
from tests.support.wire_schema import validate
from tracker.storage import open_storage
from tracker.storage.base import Alert, Storage
from tracker.storage.records import Reader, Vehicle
from tracker.watchlist_cli import main as watchlist_main

T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
TAG = "E200301666130121155074EF"


def sighting(seq: int, reader: str, at_s: float, tag: str = TAG) -> Sighting:
    t = T0 + timedelta(seconds=at_s)
    return Sighting("gw-1", "sp1", seq, "closed", tag, "epc", reader, t,
                    t + timedelta(seconds=4), 5, antennas=(1, 3))


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = open_storage(f"sqlite:///{tmp_path / 'api.sqlite3'}")
    st.migrate()
    st.upsert_readers([Reader("rd-a", "North Gate", 30.0, 120.0),
                       Reader("rd-b", "Bridge", 30.0, 120.01),
                       Reader("rd-c", "Market", 30.0, 120.02)])
    st.upsert_vehicles([Vehicle("v1", "浙A·12345", "Li", "e-bike", "red")])
    st.assign_tag(TAG, "v1", at=T0 - timedelta(days=30))
    st.write_batch([sighting(1, "rd-a", 0), sighting(2, "rd-b", 60), sighting(3, "rd-c", 120),
                    sighting(4, "rd-a", 2, tag="AABBCCDD"), sighting(5, "rd-b", 63, tag="AABBCCDD"),
                    sighting(6, "rd-c", 3600)])
    st.upsert_alerts([Alert("stolen_hit:gw-1:sp1:2", "stolen_hit", T0 + timedelta(seconds=60),
                            tag_id=TAG, reader_id="rd-b", gateway_id="gw-1",
                            sighting=SightingId("gw-1", "sp1", 2), detail={"case": "C-1"})])
    yield st
    st.close()


@pytest.fixture
def client(storage: Storage) -> Iterator[TestClient]:
    officer = api_key(storage, "wang", "officer")
    settings = ApiSettings(db="sqlite:///unused")
    with TestClient(create_app(settings, storage=storage)) as c:
        c.headers["Authorization"] = f"Bearer {officer}"
        yield c


WINDOW = {"since": "2026-11-28T05:00:00Z", "until": "2026-11-28T08:00:00Z"}


def test_keys_required(client: TestClient) -> None:
    r = client.get("/api/v1/readers", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert client.get("/api/v1/me").json() == {"user": "wang", "role": "officer"}


def test_insecure_settings_refused() -> None:
    with pytest.raises(ConfigError, match="secure_cookie"):
        ApiSettings(db="sqlite:///x", secure_cookie=False, host="0.0.0.0")


def test_trail_is_audited_and_correct(client: TestClient, storage: Storage) -> None:
    r = client.get(f"/api/v1/tags/{TAG}/trail", params=WINDOW)
    assert r.status_code == 422 and "reason" in r.text  # no reason, no query
    r = client.get(f"/api/v1/tags/{TAG.lower()}/trail",
                   params={**WINDOW, "reason": "  case C-1 ", "format": "json"})
    assert r.status_code == 200, r.text
    trail = r.json()
    assert [len(t["passes"]) for t in trail["trips"]] == [3, 1]  # 56 min gap splits the trip
    hop = trail["trips"][0]["hops"][0]
    assert hop["from"] == "rd-a" and hop["to"] == "rd-b" and hop["travel_s"] == 56.0
    assert hop["distance_m"] == pytest.approx(963.2, abs=1) and not hop["implausible"]
    audit = storage.audit_log(action="trail")
    assert len(audit) == 1 and audit[0].actor == "wang" and audit[0].reason == "case C-1"
    assert audit[0].params["tag_id"] == TAG


def test_trail_exports_geojson_by_default_and_csv(client: TestClient, storage: Storage) -> None:
    gj = client.get(f"/api/v1/tags/{TAG}/trail", params={**WINDOW, "reason": "case C-1"}).json()
    assert gj["type"] == "FeatureCollection"
    points = [f for f in gj["features"] if f["geometry"]["type"] == "Point"]
    lines = [f for f in gj["features"] if f["geometry"]["type"] == "LineString"]
    assert len(points) == 4 and len(lines) == 2  # 4 passes; 2 hops in the first trip
    assert all(len(f["geometry"]["coordinates"]) == 2 for f in lines)
    assert [(f["properties"]["from"], f["properties"]["to"]) for f in lines] == [
        ("rd-a", "rd-b"), ("rd-b", "rd-c")]
    for f in lines:
        assert isinstance(f["properties"]["implausible"], bool)
        assert f["properties"]["speed_kmh"] > 0
    r = client.get(f"/api/v1/tags/{TAG}/trail",
                   params={**WINDOW, "reason": "case C-1", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["reader_id"] for row in rows] == ["rd-a", "rd-b", "rd-c", "rd-c"]
    assert [row["trip"] for row in rows] == ["0", "0", "0", "1"]
    assert rows[0]["speed_kmh"] == "" and rows[1]["from_reader"] == "rd-a"
    assert rows[1]["implausible"] == "false" and float(rows[1]["speed_kmh"]) > 0
    assert len(storage.audit_log(action="trail")) == 2  # each export audited once


def test_trail_window_defaults_to_the_last_day(client: TestClient, storage: Storage) -> None:
    r = client.get(f"/api/v1/tags/{TAG}/trail", params={"reason": "case C-1"})
    assert r.status_code == 200 and r.json()["features"] == []  # the data is older
    (entry,) = storage.audit_log(action="trail")
    since, until = parse_time(entry.params["since"]), parse_time(entry.params["until"])
    assert until - since == timedelta(hours=24)
    assert abs(until - utcnow()) < timedelta(minutes=1)


@pytest.mark.parametrize("reason", ["", "   ", "%20%20%20", "ab", " a b ", "case\x00 1",
                                    "case\n12", "case\u202e12", "case\t12"])
def test_reasons_are_checked(client: TestClient, storage: Storage, reason: str) -> None:
    """Trimmed, at least three visible characters, no control characters: 422 with a
    message, and nothing audited."""
    r = client.get(f"/api/v1/tags/{TAG}/trail",
                   params={**WINDOW, "reason": reason.replace("%20", " ")})
    assert r.status_code == 422 and "reason" in r.text
    assert storage.audit_log(action="trail") == []


def test_a_short_chinese_reason_is_enough(client: TestClient, storage: Storage) -> None:
    r = client.get(f"/api/v1/tags/{TAG}/trail", params={**WINDOW, "reason": " 盗窃案 "})
    assert r.status_code == 200
    assert [e.reason for e in storage.audit_log(action="trail")] == ["盗窃案"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"since": "2026-11-28T05:00:00", "reason": "x-1"}, "time zone"),
        ({"since": "2026-11-28T08:00:00Z", "until": "2026-11-28T07:00:00Z", "reason": "x-1"},
         "after since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-11-28T00:00:00Z", "reason": "x-1"},
         "longer than"),
        ({"since": "yesterday", "reason": "x-1"}, "since"),
        # until defaults to the real clock: since is a week before it, never a fixed date
        # that one day lies more than the longest window in the past
        ({"since": format_time(utcnow() - timedelta(days=7)), "reason": "x"}, "reason"),
    ],
)
def test_bad_parameters_get_4xx_with_message(client: TestClient, params: dict[str, str],
                                             needle: str) -> None:
    r = client.get(f"/api/v1/tags/{TAG}/trail", params=params)
    assert r.status_code == 422
    assert needle in r.text
    assert client.get("/api/v1/tags/XYZ!/trail",
                      params={**WINDOW, "reason": "case"}).status_code in (404, 422)


def test_who_passed_here(client: TestClient) -> None:
    r = client.get("/api/v1/readers/rd-b/passes",
                   params={**WINDOW, "reason": "robbery at the bridge"})
    assert r.status_code == 200
    rows = r.json()["passes"]
    assert [p["tag_id"] for p in rows] == [TAG, "AABBCCDD"]
    assert rows[0]["direction"] == {"from": "E", "towards": "W", "heading_deg": 270.0}
    r = client.get("/api/v1/passes", params={**WINDOW, "reason": "two readers",
                                          "reader": ["rd-a", "rd-c"]})
    assert len(r.json()["passes"]) == 4
    assert client.get("/api/v1/readers/nowhere/passes",
                      params={**WINDOW, "reason": "x-ray"}).status_code == 404


def test_companions(client: TestClient) -> None:
    r = client.get(f"/api/v1/tags/{TAG}/companions", params={**WINDOW, "reason": "accomplice?"})
    assert r.status_code == 200
    (c,) = r.json()
    assert c["tag_id"] == "AABBCCDD" and c["times"] == 2


def test_alert_actions(client: TestClient, storage: Storage) -> None:
    """Acknowledge, dispatch (a unit), close (an outcome): officers only, one rule, each step
    in the alert's history; the resource shows its first and latest sighting."""
    (a,) = client.get("/api/v1/alerts").json()
    assert a["status"] == "new" and a["tag_id"] == TAG
    assert a["first_sighting"]["reader_id"] and a["latest_sighting"]["first_seen"]
    aid = a["alert_id"]
    analyst = {"Authorization": f"Bearer {api_key(storage, 'zhao', 'analyst')}"}
    for action, body in (("acknowledge", {}), ("dispatch", {"unit": "car 12"}),
                         ("close", {"outcome": "false_alarm"})):
        r = client.post(f"/api/v1/alerts/{aid}/{action}", json=body, headers=analyst)
        assert r.status_code == 403, action
    r = client.post(f"/api/v1/alerts/{aid}/acknowledge", json={"note": "seen"})
    assert r.status_code == 200 and r.json()["history"][-1]["actor"] == "wang"
    assert client.post(f"/api/v1/alerts/{aid}/status", json={"status": "new"}).status_code == 409
    assert client.post(f"/api/v1/alerts/{aid}/status", json={"status": "gone"}).status_code == 422
    assert client.post("/api/v1/alerts/nope/acknowledge", json={}).status_code == 404
    assert client.post(f"/api/v1/alerts/{aid}/dispatch", json={}).status_code == 422
    assert client.post(f"/api/v1/alerts/{aid}/status",
                       json={"status": "dispatched"}).status_code == 422  # no unit
    assert client.post(f"/api/v1/alerts/{aid}/dispatch",
                       json={"unit": "car 12", "note": "north gate"}).status_code == 200
    assert client.post(f"/api/v1/alerts/{aid}/close",
                       json={"outcome": "stolen"}).status_code == 422
    r = client.post(f"/api/v1/alerts/{aid}/close", json={"outcome": "recovered", "note": "ok"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert [(h["to"], h["note"]) for h in r.json()["history"]] == [
        ("acknowledged", "seen"), ("dispatched", "unit: car 12; north gate"),
        ("closed", "outcome: recovered; ok")]
    assert client.get(f"/api/v1/alerts/{aid}").json()["history"] == r.json()["history"]


def test_watchlist_changes_need_an_officer(client: TestClient, storage: Storage) -> None:
    analyst = api_key(storage, "zhao", "analyst")
    r = client.post("/api/v1/watchlist", json={"tag_id": "aabbccdd", "case_no": "C-9"},
                    headers={"Authorization": f"Bearer {analyst}"})
    assert r.status_code == 403
    r = client.post("/api/v1/watchlist", json={"tag_id": "aabbccdd", "case_no": "C-9"})
    assert r.status_code == 201 and r.json()["tag_id"] == "AABBCCDD"
    assert [w["tag_id"] for w in client.get("/api/v1/watchlist").json()] == ["AABBCCDD"]
    assert client.post("/api/v1/watchlist",
                       json={"tag_id": "zz", "case_no": "C"}).status_code == 422
    assert client.delete("/api/v1/watchlist/AABBCCDD").status_code == 422  # the outcome?
    assert client.delete("/api/v1/watchlist/AABBCCDD",
                         params={"status": "recovered"}).status_code == 200
    assert client.delete("/api/v1/watchlist/AABBCCDD",
                         params={"status": "recovered"}).status_code == 404
    # the same use case as pak watchlist: the attempt that changed nothing is audited too
    log = storage.audit_log()
    assert [e.action for e in log] == ["watchlist_add", "watchlist_remove", "watchlist_remove"]
    assert [e.params["changed"] for e in log[1:]] == [1, 0] and log[0].params["via"] == "api"


def test_one_active_watchlist_entry_per_tag(client: TestClient, storage: Storage) -> None:
    """A second report under the same case updates the entry; under another case it is
    refused (409, naming the case), over the API and in an import; after recovery the tag
    may be reported again."""
    assert client.post("/api/v1/watchlist", json={"tag_id": "AABB01", "case_no": "C-1"}
                       ).status_code == 201
    r = client.post("/api/v1/watchlist", json={"tag_id": "aabb01", "case_no": "C-1",
                                               "note": "blue"})
    assert r.status_code == 201 and r.json()["note"] == "blue"
    r = client.post("/api/v1/watchlist", json={"tag_id": "AABB01", "case_no": "C-2"})
    assert r.status_code == 409 and "C-1" in r.json()["message"]
    r = client.post("/api/v1/watchlist/import", headers={"Content-Type": "text/csv"},
                    content=b"tag_id,case\nAABB01,C-3\nAABB02,C-4\nAABB02,C-5\n")
    assert r.status_code == 422
    assert [x["line"] for x in r.json()["detail"]["rejected"]] == [2, 4]
    assert [(w.tag_id, w.case_no) for w in storage.watchlist()] == [("AABB01", "C-1")]
    assert client.delete("/api/v1/watchlist/AABB01",
                         params={"status": "recovered"}).status_code == 200
    assert client.post("/api/v1/watchlist", json={"tag_id": "AABB01", "case_no": "C-2"}
                       ).status_code == 201
    assert [(w.tag_id, w.case_no) for w in storage.watchlist()] == [("AABB01", "C-2")]


def test_watchlist_csv_import_reports_every_refused_line(client: TestClient,
                                                         storage: Storage) -> None:
    bad = "tag_id,case,note\nAABB03,C-3,\nNOTHEX,C-4,\nAABB05,,x\n"
    r = client.post("/api/v1/watchlist/import", content=bad.encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    report = r.json()["detail"]
    assert [x["line"] for x in report["rejected"]] == [3, 4] and report["added"] == 0
    assert storage.watchlist() == []  # all or nothing
    r = client.post("/api/v1/watchlist/import", content=b"AABB05,C-5\n",
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and "header" in r.json()["detail"]["rejected"][0]["error"]
    good = "\ufefftag_id,case,reporter\naa bb 01,C-1,Wang\nAABB02,C-2,\n"
    r = client.post("/api/v1/watchlist/import", content=good.encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json() == {"added": 2, "rejected": []}
    assert {w.tag_id for w in storage.watchlist()} == {"AABB01", "AABB02"}
    assert [e.params["via"] for e in storage.audit_log(action="watchlist_add")] == [
        "api import", "api import"]


def test_stats_and_console(client: TestClient) -> None:
    s = client.get("/api/v1/stats").json()
    assert s["sightings"] == 6 and s["readers"] == 3 and s["alerts_open"] == 1
    page = client.get("/")
    assert page.status_code == 200 and "pak" in page.text
    assert client.get("/static/console.js").status_code == 200
    assert client.get("/healthz").json()["alert_feed"] == "off"


# --- one shape per thing: what the API, the feed and the CLI write agree -----------------------

def test_status_change_feeds_the_alert_message(client: TestClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The live feed carries the MQTT alert message whoever changed the alert (it sent the
    API's resource shape after a status change)."""
    fed: list[dict[str, Any]] = []
    monkeypatch.setattr(client.app.state.alert_hub, "publish_local", fed.append)  # type: ignore[attr-defined]
    (a,) = client.get("/api/v1/alerts").json()
    r = client.post(f"/api/v1/alerts/{a['alert_id']}/status", json={"status": "acknowledged"})
    assert r.status_code == 200
    (msg,) = fed
    mqtt_shape = alert_json(Alert("x", "stolen_hit", T0, sighting=SightingId("g", "s", 1)), 1)
    assert sorted(msg) == sorted(mqtt_shape)
    validate("alert", msg)
    assert msg["status"] == "acknowledged"
    assert msg["sighting"] == {"gateway_id": "gw-1", "spool_id": "sp1", "seq": 2}
    assert msg["rev"] > a["rev"]  # a newer revision of the same alert


def test_companion_times_are_wire_times(client: TestClient) -> None:
    """Every route writes times as the wire does (companions wrote isoformat())."""
    r = client.get(f"/api/v1/tags/{TAG}/companions", params={**WINDOW, "reason": "accomplice?"})
    assert r.status_code == 200
    (c,) = r.json()
    for o in c["occasions"]:
        for key in ("tag_at", "other_at"):
            assert TIME_RE.match(o[key]), o[key]
            assert parse_time(o[key]) >= T0


def test_cli_lists_the_watchlist_as_the_api_does(client: TestClient, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``pak watchlist list --json`` and ``GET /api/v1/watchlist`` write one entry shape (the
    CLI wrote ``case`` where the API writes ``case_no``)."""
    assert client.post("/api/v1/watchlist", json={"tag_id": "AABBCCDD", "case_no": "C-9",
                                               "note": "red"}).status_code == 201
    capsys.readouterr()
    assert watchlist_main(["list", "--db", f"sqlite:///{tmp_path / 'api.sqlite3'}",
                           "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == client.get("/api/v1/watchlist").json()


def test_pass_windows_are_wire_times(client: TestClient) -> None:
    """The passes' window is written as the wire writes times (it was isoformat())."""
    r = client.get("/api/v1/readers/rd-a/passes", params={**WINDOW, "reason": "burglary"})
    assert r.status_code == 200
    body = r.json()
    assert (body["since"], body["until"]) == ("2026-11-28T05:00:00.000Z",
                                              "2026-11-28T08:00:00.000Z")


def test_response_models_are_the_wire_records(client: TestClient, storage: Storage) -> None:
    """The API documents and returns the wire package's records (one definition)."""
    paths = client.get("/openapi.json").json()["paths"]
    ok = paths["/api/v1/readers/{reader_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ReaderRecord")
    assert client.get("/api/v1/readers/rd-a").json() == reader_record_json(
        storage.get_reader("rd-a"))  # type: ignore[arg-type]
