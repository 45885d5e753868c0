"""TLS on the broker links, with real processes: a private Mosquitto whose only listener is
TLS and demands a client certificate, certificates this test makes with the ``openssl`` CLI,
then ``pak gateway`` (a simulated reader on a pty) and ``pak tracker`` (SQLite) talking through
it. A sighting read at the reader is stored by the tracker and its receipt empties the
gateway's spool; a gateway given the wrong CA is refused and says why in its log."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import services
from tests.gateway.harness import gateway, gateway_args, sim_reader, spool_rows
from tests.support.procs import tracker
from tests.support.wait import eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

TAG = "E2003016661301211550700A"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", cwd=d)


def _signed(d: Path, name: str, ca: str, san: str | None) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", str(ext),
             cwd=d)


@dataclass
class Pki:
    dir: Path

    def __getitem__(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder Mosquitto can read after it drops root for its own user (pytest's tmp_path
    sits under a folder only root may enter)."""
    with tempfile.TemporaryDirectory(prefix="pak-tls-") as d:
        os.chmod(d, 0o777)
        yield Path(d)


@pytest.fixture
def pki(shared_dir: Path) -> Pki:
    services.require(shutil.which("openssl") is not None, "the openssl CLI is not installed")
    d = shared_dir / "pki"
    d.mkdir()
    d.chmod(0o755)
    _ca(d, "ca")
    _ca(d, "other-ca")
    _signed(d, "broker", "ca", "IP:127.0.0.1,DNS:localhost")
    _signed(d, "client", "ca", None)
    for f in d.iterdir():
        f.chmod(0o644)  # Mosquitto may read them as its own user
    return Pki(d)


class TlsMosquitto(services.PrivateMosquitto):
    """The private Mosquitto with its listener made TLS-only, client certificate required."""

    pki: Pki

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        conf = super().write_config()
        conf.write_text(conf.read_text() + "\n".join([
            f"cafile {self.pki['ca.pem']}", f"certfile {self.pki['broker.pem']}",
            f"keyfile {self.pki['broker.key']}", "require_certificate true", ""]))
        return conf


@pytest.fixture
def tls_broker(pki: Pki, shared_dir: Path) -> Iterator[TlsMosquitto]:
    services.require(shutil.which("mosquitto") is not None, "mosquitto is not installed")
    d = shared_dir / "mosq"
    d.mkdir()
    os.chmod(d, 0o777)  # mosquitto may drop privileges to its own user
    m = TlsMosquitto(d)
    m.pki = pki
    m.start()
    try:
        yield m
    finally:
        m.stop()


def _tls(pki: Pki, ca: str = "ca.pem") -> list[str]:
    return ["--mqtt-ca", pki[ca], "--mqtt-cert", pki["client.pem"],
            "--mqtt-key", pki["client.key"]]


def test_gateway_to_tracker_over_tls_with_client_certificates(
        tmp_path: Path, tls_broker: TlsMosquitto, pki: Pki) -> None:
    root = services.unique("pak-tls/") + "/v1"
    spool = tmp_path / "spool"
    link = tmp_path / "reader"
    with tracker(tmp_path, mqtt=tls_broker.url, db=f"sqlite:///{tmp_path}/pak.db", root=root,
                 client_id="trk-tls", extra=_tls(pki)) as trk, \
            sim_reader(["--driver", "r2000", "--link", str(link), "--tag", f"{TAG}:1",
                        "--dwell", "0.5", "--visible", "1", "--rate", "20", "--duration", "2",
                        "--seed", "3"], tmp_path / "sim.log"), \
            gateway([*gateway_args(gateway_id="gw-tls", spool=spool, mqtt_url=tls_broker.url,
                                   root=root, extra=_tls(pki)),
                     "--driver", "r2000", "--serial", str(link), "--exit-after", "0.3"],
                    tmp_path / "gw.log") as gw:
        # a loaded machine can start the tracker's subscription after the gateway's first
        # publish: then the gateway's republish timer brings the sighting, hence the margin
        eventually(lambda: trk.metric("pak_ingest_sightings_stored_total") >= 1, 60,
                   "a sighting stored by the tracker over TLS")
        eventually(lambda: "mqtt_connected" in gw.log_text(), 5, "the gateway's TLS connection")
        eventually(lambda: not spool_rows(spool) and "spool_open" in gw.log_text(), 20,
                 "the receipt (back over TLS) empties the spool")
    assert "mqtt_tls" not in gw.log_text() + trk.log_text()


def test_a_broker_signed_by_another_ca_is_refused_with_a_clear_log_line(
        tmp_path: Path, tls_broker: TlsMosquitto, pki: Pki) -> None:
    root = services.unique("pak-tls/") + "/v1"
    with gateway([*gateway_args(gateway_id="gw-wrong-ca", spool=tmp_path / "spool",
                                mqtt_url=tls_broker.url, root=root,
                                extra=_tls(pki, "other-ca.pem")),
                  "--listen", "tcp://127.0.0.1:0", "--driver", "mr7901"],
                 tmp_path / "gw.log") as gw:
        eventually(lambda: "mqtt_tls_refused" in gw.log_text(), 15, "the TLS refusal in the log")
        text = gw.log_text()
    line = next(ln for ln in text.splitlines() if "mqtt_tls_refused" in ln)
    assert "error=" in line and "certificate" in line.split("error=", 1)[1], line
    assert "other-ca.pem" in line and f"127.0.0.1:{tls_broker.port}" in line, line
    assert "mqtt_connected" not in text


def test_the_api_alert_feed_connects_over_tls(tls_broker: TlsMosquitto, pki: Pki) -> None:
    """The API's aiomqtt feed takes the same broker settings (TLS, client certificate) as the
    paho clients: an alert published by a factory-made client reaches a feed subscriber."""
    import asyncio

    from api.alert_hub import AlertHub
    from pak.broker_url import Brokers, TlsFiles
    from pak.mqtt import CENTRE_BACKOFF, make_client

    root = services.unique("pak-tls/") + "/v1"
    brokers = Brokers.parse(tls_broker.url, tls=TlsFiles(pki["ca.pem"], pki["client.pem"],
                                                         pki["client.key"]))

    async def scenario() -> dict[str, object]:
        hub = AlertHub(brokers, root, backoff=CENTRE_BACKOFF)
        await hub.start()
        feed = hub.subscribe()
        first = asyncio.ensure_future(anext(feed))
        pub = make_client(brokers, backoff=CENTRE_BACKOFF)
        try:
            while not hub.connected:  # connected is set after the SUBACK
                await asyncio.sleep(0.02)
            pub.connect_first()
            pub.loop_start()
            pub.publish(f"{root}/alerts/tamper", b'{"id": "tamper:rd-1", "rev": 1}', qos=1)
            return await asyncio.wait_for(first, 10)
        finally:
            pub.disconnect()
            pub.loop_stop()
            await hub.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == {"id": "tamper:rd-1", "rev": 1}
