"""deploy/prometheus/ and deploy/grafana/: promtool accepts the scrape configuration and the
rules (and their unit tests), the rules cover the operational alerts the issue asks for, and
every metric a rule or a dashboard panel names is one the code exports: the tracker's registry,
the API's collector, and the /metrics page of a real ``pak gateway`` process (plus the gauges
the gateway names literally but shows only when they have a value)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.alert_hub import AlertHub
from api.metrics import register
from ingest.metrics import IngestMetrics
from pak.broker_url import Brokers
from pak.mqtt import CENTRE_BACKOFF
from tests import services

PROM = services.REPO / "deploy" / "prometheus"
DASHBOARD = services.REPO / "deploy" / "grafana" / "pak.json"
PAK = [sys.executable, "-m", "pak.cli"]
# metrics Prometheus makes itself for every target
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
METRIC = re.compile(r"\b(pak_[a-z0-9_]+|up|scrape_[a-z_]+)\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                             "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}


def _promtool() -> str:
    tool = shutil.which("promtool")
    services.require(tool is not None, "promtool is not installed (make services)")
    assert tool is not None
    return tool


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def _panel_exprs() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for p in panels:
            out += [t["expr"] for t in p.get("targets", []) if "expr" in t]
            out += walk(p.get("panels", []))
        return out
    return walk(json.loads(DASHBOARD.read_text())["panels"])


def _names(registry: CollectorRegistry) -> set[str]:
    out: set[str] = set()
    for fam in registry.collect():
        out |= {fam.name + s for s in SUFFIXES.get(fam.type, ("",))}
    return out


def _gateway_metrics(tmp_path: Path, mqtt_url: str, topic_root: str) -> set[str]:
    port = services.free_port()
    log = (tmp_path / "gw.log").open("w")
    proc = subprocess.Popen(
        [*PAK, "gateway", "--gateway-id", "gw-metrics", "--driver", "mr7901",
         "--listen", "tcp://127.0.0.1:0", "--mqtt", mqtt_url, "--topic-root", topic_root,
         "--spool", str(tmp_path / "spool"), "--health-every", "0.2",
         "--metrics-listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        services.wait_port("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 30
        text = ""
        while not text and time.monotonic() < deadline:  # empty until the first health
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        assert text, (tmp_path / "gw.log").read_text()
        return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}
    finally:
        proc.terminate()
        proc.wait(30)


def _gateway_emitted() -> set[str]:
    """Gauges the gateway writes only when they have a value (the oldest spooled sighting's
    age, with an empty spool: none), named literally in its collector (gateway/metrics.py)."""
    found: set[str] = set()
    for f in (services.REPO / "gateway").rglob("*.py"):
        found |= {"pak_gateway_" + m for m in re.findall(r'\bgauge\("([a-z_]+)"', f.read_text())}
    return found


@pytest.fixture
def exported(tmp_path: Path, mqtt_url: str, topic_root: str) -> set[str]:
    names = _names(IngestMetrics().registry)
    api = CollectorRegistry()
    register(AlertHub(Brokers.parse("mqtt://127.0.0.1:1883"), "pak/v1", backoff=CENTRE_BACKOFF),
                      api)
    names |= _names(api)
    scraped = _gateway_metrics(tmp_path, mqtt_url, topic_root)
    assert "pak_gateway_spool_depth" in scraped and "pak_gateway_reads_total" in scraped
    return names | scraped | _gateway_emitted()


def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    tool = _promtool()
    # promtool opens the API's scrape key file: the config is checked as installed, beside
    # its rule and target files, with the key where the comment says an operator puts it
    for f in ("prometheus.yml", "alerts.yml", "pak-gateways.yml"):
        shutil.copy(PROM / f, tmp_path / f)
    key = tmp_path / "pak-api.key"
    key.write_text("a-metrics-read-key\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(config.read_text().replace("/etc/prometheus/pak-api.key", str(key)))
    for args in (["check", "config", str(config)],
                 ["check", "rules", str(PROM / "alerts.yml")],
                 ["test", "rules", str(PROM / "alerts.test.yml")]):
        r = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr


def test_rules_cover_the_operational_alerts() -> None:
    rules = _rules()
    names = {r["alert"] for r in rules}
    for wanted in ("PakGatewayOffline", "PakSpoolDepthRising", "PakIngestLag", "PakDeadLetters",
                   "PakAlertFeedDown", "PakDatabaseUnavailable"):
        assert wanted in names
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


@pytest.mark.mosquitto
def test_every_metric_named_exists_in_the_code(exported: set[str]) -> None:
    used: dict[str, str] = {}
    for r in _rules():
        for m in METRIC.findall(r["expr"]):
            used[m] = f"rule {r['alert']}"
    exprs = _panel_exprs()
    assert exprs, "the dashboard has no query"
    for e in exprs:
        for m in METRIC.findall(e):
            used[m] = f"dashboard query {e!r}"
    missing = {m: where for m, where in used.items() if m not in exported | BUILTIN}
    assert not missing, f"not exported by pak: {missing}"
    assert {m for m in used if m.startswith("pak_gateway_")}
    assert {m for m in used if m.startswith("pak_ingest_")}
    assert {m for m in used if m.startswith("pak_api_")}


def test_a_misspelt_metric_would_be_caught() -> None:
    """The name check relies on the registry's names carrying the exposition suffixes."""
    names = _names(IngestMetrics().registry)
    assert "pak_ingest_dead_letters_total" in names
    assert "pak_ingest_dead_letter_total" not in names
    assert "pak_ingest_commit_seconds_bucket" in names


def test_dashboard_is_grafana_json() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["title"] and d["uid"] and isinstance(d["panels"], list)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["type"] in ("timeseries", "stat", "table", "row", "gauge")
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
