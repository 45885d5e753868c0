"""What the API serves the console: Leaflet from the installed XStatic-Leaflet package (no
CDN, no copy in the repository), the console's settings and the operator's roads GeoJSON,
each only after sign-in; and ``pak sim city --export-streets`` writing that GeoJSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from pak.errors import ConfigError
from pak.settings import load
from tests.api.accounts import api_key
from tracker.storage import open_storage
from tracker.storage.base import Storage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(f"sqlite:///{tmp_path / 'api.sqlite3'}") as st:
        st.migrate()
        yield st


@pytest.fixture
def streets(tmp_path: Path) -> Path:
    path = tmp_path / "streets.geojson"
    subprocess.run([sys.executable, "-m", "pak.cli", "sim", "city", "--rows", "3", "--cols", "4",
                    "--export-streets", str(path)], check=True, capture_output=True)
    return path


def _client(storage: Storage, **settings: object) -> Iterator[TestClient]:
    key = api_key(storage, "wang", "officer")
    app = create_app(ApiSettings(db="sqlite:///unused", **settings),  # type: ignore[arg-type]
                     storage=storage)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def test_the_city_exports_its_streets(streets: Path) -> None:
    g = json.loads(streets.read_text())
    lines = [f["geometry"] for f in g["features"]]
    assert g["type"] == "FeatureCollection" and len(lines) == 3 + 4  # a street per row, column
    assert all(x["type"] == "LineString" for x in lines)
    assert sorted(len(x["coordinates"]) for x in lines) == [3] * 4 + [4] * 3
    lon, lat = lines[0]["coordinates"][0]
    assert 120 < lon < 121 and 30 < lat < 31  # [lon, lat] around the default centre


def test_leaflet_comes_from_the_installed_package(storage: Storage) -> None:
    for c in _client(storage):
        js = c.get("/static/vendor/leaflet/leaflet.js", headers={"Authorization": ""})
        assert js.status_code == 200 and "Leaflet" in js.text[:400]
        assert c.get("/static/vendor/leaflet/leaflet.css").status_code == 200
        assert c.get("/static/vendor/leaflet/images/marker-icon.png").status_code == 200
        page = c.get("/").text
        assert "/static/vendor/leaflet/leaflet.js" in page
    # nothing from another site, and no copy of the library in the repository
    static = REPO / "api" / "static"
    for f in static.rglob("*"):
        if f.is_file():
            text = f.read_text("utf-8")
            assert "://" not in text.replace("http://www.w3.org", ""), f
    assert not list(static.rglob("leaflet*"))


def test_console_config_and_roads(storage: Storage, streets: Path) -> None:
    for c in _client(storage, timezone="Asia/Urumqi",
                     tile_url="https://tiles.example/{z}/{x}/{y}.png", roads_geojson=streets):
        assert c.get("/api/v1/console/config", headers={"Authorization": ""}).status_code == 401
        cfg = c.get("/api/v1/console/config").json()
        assert cfg == {"timezone": "Asia/Urumqi", "tile_url": "https://tiles.example/{z}/{x}/{y}.png",
                       "roads_url": "/api/v1/console/roads"}
        roads = c.get(cfg["roads_url"])
        assert roads.status_code == 200 and roads.json() == json.loads(streets.read_text())


def test_without_roads_the_route_says_so(storage: Storage) -> None:
    for c in _client(storage):
        assert c.get("/api/v1/console/config").json() == {
            "timezone": "Asia/Shanghai", "tile_url": None, "roads_url": None}
        r = c.get("/api/v1/console/roads")
        assert r.status_code == 404 and "roads_geojson" in r.json()["message"]


@pytest.mark.parametrize(("flag", "value"), [("--timezone", "Mars/Olympus"),
                                             ("--tile-url", "tiles.example/x.png"),
                                             ("--roads-geojson", "/nonexistent.geojson")])
def test_bad_console_settings_name_the_setting(flag: str, value: str) -> None:
    with pytest.raises(ConfigError, match=flag.strip("-").replace("-", "_")):
        load(ApiSettings, "api", ["--db", "sqlite:///x", flag, value], env={})


def _table(text: str) -> dict[str, set[str]]:
    zh, en = text.split('"en": {', 1)
    key = re.compile(r'"([\w.-]+)":')
    return {"zh-CN": set(key.findall(zh.split('"zh-CN": {', 1)[1])), "en": set(key.findall(en))}


def test_every_string_is_in_both_languages_and_no_browser_dialogs() -> None:
    static = REPO / "api" / "static"
    table = _table((static / "i18n.js").read_text("utf-8"))
    assert table["zh-CN"] == table["en"], table["zh-CN"] ^ table["en"]
    js = (static / "console.js").read_text("utf-8")
    html = (static / "index.html").read_text("utf-8")
    used = set(re.findall(r'\bt\("([\w.-]+)"', js))
    used |= set(re.findall(r'data-i18n(?:-ph)?="([\w.-]+)"', html))
    assert len(used) > 50 and used - table["zh-CN"] == set()
    code = re.sub(r"//.*", "", js)
    assert not re.search(r"(?<![\w.])(prompt|alert|confirm)\(", code)
