"""The web console in real headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) against a real ``pak api`` process, scratch SQLite and the shared
Mosquitto: sign in (the page is Chinese), a stolen alert appears within a second of its alert
message being published, an officer acknowledges, dispatches and closes it in the page's own
dialogs, and a trail searched with a reason shows its timeline.

Screenshots go to ``tests/artifacts/console/`` (ignored by git): desktop and 390 px wide.
Without the browser the test is skipped, except with CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from pak.alert import Alert
from pak.types import Sighting, SightingId
from pak.wire.alert import encode_alert
from tests import services
from tests.api.accounts import fast_passwords, password_user
from tracker.storage import open_storage
from tracker.storage.records import Reader

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
STOLEN = "30000000"
PASSWORD = "测试-Pass-2026"


def _need_browser() -> None:
    # skipped outside CI, a failure in CI (one rule for every missing service: services.require)
    services.require(os.path.exists(CHROMIUM) and os.path.exists(DRIVER),
                     "chromium and chromium-driver are needed (deploy/setup-services.sh "
                     "installs them)")


def _readers() -> list[Reader]:
    # three readers on a street running east (about 400 m apart), one to the north
    lat, lon = 30.2741, 120.1551
    return [Reader("rd-a", "文三路口", lat, lon, {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0}),
            Reader("rd-b", "学院路口", lat, lon + 0.0041, {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0}),
            Reader("rd-c", "教工路口", lat, lon + 0.0082, {1: 90.0, 2: 180.0, 3: 270.0, 4: 0.0}),
            Reader("rd-d", "北山路口", lat + 0.0036, lon + 0.0082)]


def _sightings(now: datetime) -> list[Sighting]:
    out = []
    # west to east through a, b, c (antenna 3 faces west: came from the west, left east)
    for seq, (reader, minutes) in enumerate((("rd-a", 30), ("rd-b", 29), ("rd-c", 28),
                                             ("rd-d", 27)), start=1):
        t = now - timedelta(minutes=minutes)
        out.append(Sighting("gw-1", "spool-1", seq, "closed", STOLEN, "epc", reader, t,
                            t + timedelta(seconds=4), 6, antennas=(3, 1)))
    # then far away a second later: a hop no vehicle can make (flagged, never hidden)
    t = now - timedelta(minutes=27) + timedelta(seconds=1)
    out.append(Sighting("gw-1", "spool-1", 9, "closed", STOLEN, "epc", "rd-a", t,
                        t + timedelta(seconds=2), 3, antennas=(1,)))
    return out


def _hit(now: datetime) -> Alert:
    detail = {
        "case": "杭公刑(2026)1203号", "cases": [],
        "reader": {"reader_id": "rd-c", "name": "教工路口", "latitude": 30.2741,
                   "longitude": 120.1633},
        "seen": {"state": "open", "first_seen": (now - timedelta(seconds=3)).isoformat(),
                 "last_seen": now.isoformat(), "antennas": [3, 1], "reads": 4,
                 "rssi_max_dbm": -52.0,
                 "direction": {"from": "W", "towards": "E", "heading_deg": 90.0}},
        "delay_s": 0.2,
        "vehicle": {"plate": "浙A12345", "kind": "e-bike", "colour": "red"},
        "recent_passes": [],
        "predicted_next": [{"reader_id": "rd-d", "name": "北山路口", "latitude": 30.2777,
                            "longitude": 120.1633, "probability": 0.8, "support": 12,
                            "expected_at": (now + timedelta(seconds=70)).isoformat(),
                            "earliest": None, "latest": None}],
    }
    return Alert(alert_id=f"stolen_hit:{STOLEN}:1", kind="stolen_hit", at=now, status="new",
                 tag_id=STOLEN, reader_id="rd-c", gateway_id="gw-1",
                 sighting=SightingId("gw-1", "spool-1", 10), detail=detail)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    _need_browser()
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="pak-chromium-")
    opts = Options()
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--lang=zh-CN",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,860",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def test_officer_signs_in_acts_on_a_stolen_alert_and_reads_a_trail(
        tmp_path: Path, mqtt_url: str, topic_root: str, browser: WebDriver) -> None:
    d = browser
    now = datetime.now(UTC)
    db = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    storage = open_storage(db)
    storage.migrate()
    storage.upsert_readers(_readers())
    storage.write_batch(_sightings(now))
    password_user(storage, fast_passwords(), "wang", "officer", PASSWORD)
    password_user(storage, fast_passwords(), "li", "analyst", PASSWORD)
    storage.close()
    streets = tmp_path / "streets.geojson"
    subprocess.run([sys.executable, "-m", "pak.cli", "sim", "city", "--rows", "6", "--cols", "6",
                    "--spacing-m", "400", "--center", "30.2755,120.1600",
                    "--export-streets", str(streets)], check=True, capture_output=True)
    port = services.free_port()
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen([sys.executable, "-m", "pak.cli", "api", "--db", db,
                                "--port", str(port), "--mqtt", mqtt_url, "--topic-root",
                                topic_root, "--no-secure-cookie", "--roads-geojson",
                                str(streets)], stdout=out, stderr=subprocess.STDOUT)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        services.wait_port("127.0.0.1", port, timeout=20)
        base = f"http://127.0.0.1:{port}"
        wait = WebDriverWait(d, 10, poll_frequency=0.05)
        d.get(base + "/")
        # signed out: the sign-in dialog, in Chinese
        wait.until(ec.visibility_of_element_located((By.ID, "login")))
        assert d.find_element(By.ID, "login-submit").text == "登录"
        d.find_element(By.ID, "login-user").send_keys("wang")
        d.find_element(By.ID, "login-password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "user"), "wang（民警）"))
        # the map: Leaflet from the API, the roads layer and the readers drawn
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, ".reader-dot")) == 4)
        wait.until(lambda _: len(d.find_elements(
            By.CSS_SELECTOR, ".leaflet-overlay-pane path")) >= 4 + 12)
        # the stream's EventSource is open before the alert goes out
        wait.until(lambda _: d.execute_script(
            "return stream && stream.readyState === EventSource.OPEN"))
        # "live" only once the server says it hears the broker
        wait.until(ec.text_to_be_present_in_element((By.ID, "feed"), "实时预警已连接"))
        pub.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
        pub.loop_start()
        hit = _hit(datetime.now(UTC))
        # the tracker stores the alert with its batch and publishes it; here the test is both
        s2 = open_storage(db)
        s2.upsert_alerts([hit])
        s2.close()
        t0 = time.monotonic()
        pub.publish(f"{topic_root}/alerts/stolen_hit", encode_alert(hit, 1), qos=1)
        item = WebDriverWait(d, 5, poll_frequency=0.02).until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'#alerts li[data-id="{hit.alert_id}"]')))
        took = time.monotonic() - t0
        assert took < 1.0, f"the alert took {took:.2f} s to appear"
        assert "被盗车辆预警" in item.text and "待签收" in item.text
        assert "flash" in item.get_attribute("class")
        item.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "alert-body"), "由西向东"))
        body = d.find_element(By.ID, "alert-body").text
        assert "浙A12345 红色 电动自行车" in body and "北山路口" in body and "教工路口" in body
        # the red stolen mark on the alert's position and the predicted reader with its ETA
        assert d.find_elements(By.CSS_SELECTOR, ".hit-mark")
        assert d.find_elements(By.CSS_SELECTOR, ".pred-mark")
        _shot(d, "alert-desktop")

        def act(name: str, fill: dict[str, str], status: str, shot: str = "") -> None:
            d.find_element(By.CSS_SELECTOR, f'#alert-actions [data-act="{name}"]').click()
            wait.until(ec.visibility_of_element_located((By.ID, "ask")))
            for field, value in fill.items():
                e = d.find_element(By.CSS_SELECTOR, f'#ask-fields [name="{field}"]')
                if e.tag_name == "select":
                    Select(e).select_by_value(value)
                else:
                    e.send_keys(value)
            if shot:
                _shot(d, shot)
            d.find_element(By.ID, "ask-ok").click()
            wait.until(ec.text_to_be_present_in_element(
                (By.CSS_SELECTOR, f'#alerts li[data-id="{hit.alert_id}"] .badge'), status))

        act("acknowledge", {}, "已签收")
        act("dispatch", {"unit": "西湖巡逻二组"}, "已派警")
        act("close", {"outcome": "recovered", "note": "车辆已找回，交还车主"}, "已办结",
            shot="dialog-close")
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#alert-history li")) == 3)
        history = d.find_element(By.ID, "alert-history").text
        assert "已签收" in history and "已派警" in history and "已办结" in history
        assert not d.find_elements(By.CSS_SELECTOR, "#alert-actions [data-act]")

        # a trail: the reason is asked for, never pre-filled
        assert d.find_element(By.ID, "trail-reason").get_attribute("value") == ""
        d.find_element(By.ID, "trail-tag").send_keys(STOLEN)
        d.find_element(By.ID, "trail-reason").send_keys("杭公刑(2026)1203号 追查被盗车辆")
        d.find_element(By.CSS_SELECTOR, "#trail-form button").click()
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")) >= 4)
        timeline = d.find_element(By.ID, "timeline").text
        assert "文三路口" in timeline and "学院路口" in timeline
        assert d.find_elements(By.CSS_SELECTOR, "#timeline tr.implausible")
        assert d.find_elements(By.CSS_SELECTOR, ".arrow")
        href = d.find_element(By.ID, "export-csv").get_attribute("href")
        assert "format=csv" in href and "reason=" in href
        _shot(d, "trail-desktop")

        # phone width: the side panel folds away behind its toggle; the map keeps the screen
        d.set_window_size(390, 844)
        wait.until(lambda _: not d.find_element(By.ID, "panel").is_displayed())
        _shot(d, "phone-map")
        d.find_element(By.ID, "panel-toggle").click()
        wait.until(lambda _: d.find_element(By.ID, "panel").is_displayed())
        _shot(d, "phone-panel")
        # English, remembered across a reload
        d.find_element(By.ID, "lang").click()
        d.refresh()
        wait.until(ec.text_to_be_present_in_element((By.ID, "logout"), "Sign out"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "user"), "wang（officer）"))
        # an analyst: no alert panel and no actions; the server's refusal reads as a sentence
        d.set_window_size(1280, 860)
        d.find_element(By.ID, "logout").click()
        wait.until(ec.visibility_of_element_located((By.ID, "login")))
        d.find_element(By.ID, "login-user").send_keys("li")
        d.find_element(By.ID, "login-password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "user"), "li（analyst）"))
        assert d.find_element(By.ID, "trail-section").is_displayed()
        assert not d.find_element(By.CSS_SELECTOR, "[data-needs=alerts]").is_displayed()
        refused = d.execute_async_script(
            "const done = arguments[0];"
            f"api('/alerts/{hit.alert_id}/status', {{method: 'POST', body: {{status: 'closed'}}}})"
            ".then(() => done('accepted'), (e) => done(e.status + ' ' + e.message));")
        assert refused.startswith("403 Your role may not do this"), refused
    except Exception:
        _shot(d, "failure")
        for entry in d.get_log("browser"):
            print("browser:", entry)
        raise
    finally:
        pub.loop_stop()
        pub.disconnect()
        d.get("about:blank")  # the page's live feed ends
        api.terminate()
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:  # an open stream may hold uvicorn's shutdown
            api.kill()
            api.wait(5)
        print(log.read_text(errors="replace")[-3000:])
