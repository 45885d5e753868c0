"""``pak api`` serves HTTPS itself with --https-cert/--https-key (a certificate the test makes),
refuses half a pair, and exports the live alert feed's state for the alert rules."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from api.alert_hub import AlertHub
from api.metrics import register
from api.settings import ApiSettings
from pak.broker_url import Brokers
from pak.errors import ConfigError
from pak.mqtt import CENTRE_BACKOFF
from pak.settings import load
from tests import services

PAK = [sys.executable, "-m", "pak.cli"]


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    tool = shutil.which("openssl")
    services.require(tool is not None, "openssl is not installed")
    assert tool is not None
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    subprocess.run([tool, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key


@pytest.mark.slow
def test_pak_api_serves_https(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    port = services.free_port()
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen([*PAK, "api", "--db", f"sqlite:///{tmp_path}/a.db",
                             "--port", str(port), "--https-cert", str(cert),
                             "--https-key", str(key)], stdout=log, stderr=subprocess.STDOUT)
    try:
        services.wait_port("127.0.0.1", port, timeout=30)
        ctx = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx,
                                    timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["ok"] is True
        with pytest.raises(OSError):  # plain HTTP gets no answer from a TLS socket
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
    finally:
        proc.terminate()
        proc.wait(30)


def test_half_a_certificate_pair_is_refused(tmp_path: Path) -> None:
    cert, _ = _certificate(tmp_path)
    with pytest.raises(ConfigError, match="https_cert/https_key"):
        load(ApiSettings, "api", ["--db", "sqlite:///x.db", "--https-cert",
                                  str(cert)], env={})
    with pytest.raises(ConfigError, match="https_key"):
        load(ApiSettings, "api", ["--db", "sqlite:///x.db", "--https-cert",
                                  str(cert), "--https-key", str(tmp_path / "none.key")], env={})


def test_alert_feed_metrics_follow_the_hub() -> None:
    registry = CollectorRegistry()
    hub = AlertHub(Brokers.parse("mqtt://127.0.0.1:1883"), "pak/v1", backoff=CENTRE_BACKOFF)
    register(hub, registry)
    assert registry.get_sample_value("pak_api_alert_feed_connected") == 0.0
    hub.connected, hub.received = True, 7
    assert registry.get_sample_value("pak_api_alert_feed_connected") == 1.0
    assert registry.get_sample_value("pak_api_alert_feed_received_total") == 7.0
    off = CollectorRegistry()
    register(AlertHub(None, "pak/v1", backoff=CENTRE_BACKOFF), off)
    assert b"pak_api_alert_feed" not in generate_latest(off)  # no broker: nothing to watch
