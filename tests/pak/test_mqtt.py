"""pak.mqtt: the client factory's broker fail-over, credentials and back-off, against the
shared Mosquitto (and a port where nothing listens)."""

from __future__ import annotations

import itertools
import logging
import threading
from pathlib import Path

import pytest

from pak.broker_url import Brokers, TlsFiles
from pak.errors import ConfigError
from pak.mqtt import CENTRE_BACKOFF, Backoff, gateway_backoff, make_client
from pak.settings import BrokerSettings
from tests import services


def test_backoff_doubles_to_its_cap() -> None:
    assert list(itertools.islice(CENTRE_BACKOFF.delays(), 5)) == [1, 2, 4, 5, 5]
    assert list(itertools.islice(gateway_backoff(10).delays(), 6)) == [1, 2, 4, 8, 10, 10]
    assert gateway_backoff(0) == Backoff(1, 1)


def test_brokers_parse_credentials_and_refusals() -> None:
    b = Brokers.parse("mqtt://u:p@a:1, mqtt://v@b", password="from-env")
    assert [(u.host, u.port, u.username, u.password) for u in b.urls] == \
        [("a", 1, "u", "from-env"), ("b", 1883, "v", "from-env")]
    b = Brokers.parse("mqtt://a,mqtt://b", username="w", password="pw")
    assert {(u.username, u.password) for u in b.urls} == {("w", "pw")}
    assert not b.password_in_url
    assert Brokers.parse("mqtt://u:p@a").password_in_url
    assert "p@" not in Brokers.parse("mqtt://u:p@a").redacted()
    with pytest.raises(ConfigError, match="one scheme"):
        Brokers.parse("mqtt://a,mqtts://b")
    with pytest.raises(ConfigError, match="needs a user"):
        Brokers.parse("mqtt://a", password="x")


@pytest.mark.mosquitto
def test_a_failed_broker_gives_way_to_the_next(caplog: pytest.LogCaptureFixture) -> None:
    host, port = services.SHARED_MQTT
    dead = services.free_port()  # nothing listens here
    brokers = Brokers.parse(f"mqtt://127.0.0.1:{dead},mqtt://{host}:{port}")
    c = make_client(brokers, backoff=Backoff(1, 1), client_id=services.unique("pak-fo-"))
    connected = threading.Event()
    c.on_connect = lambda *_a: connected.set()
    caplog.set_level(logging.DEBUG, "pak.mqtt")
    c.start(10)
    try:
        assert connected.wait(15), "never reached the second broker"
        assert c.broker.port == port
    finally:
        c.disconnect()
        c.loop_stop()
    names = [r.getMessage() for r in caplog.records]
    assert "mqtt_connect_failed" in names and "mqtt_failover" in names


@pytest.mark.mosquitto
def test_connect_first_tries_each_broker_in_turn() -> None:
    host, port = services.SHARED_MQTT
    brokers = Brokers.parse(f"mqtt://127.0.0.1:{services.free_port()},mqtt://{host}:{port}")
    c = make_client(brokers, backoff=CENTRE_BACKOFF)
    c.connect_first(10)
    try:
        assert c.broker.port == port
    finally:
        c.disconnect()


def test_tls_files_need_an_mqtts_url_in_the_settings() -> None:
    here = Path(__file__)
    with pytest.raises(ConfigError, match="mqtts://"):
        BrokerSettings(mqtt="mqtt://a", mqtt_ca=here)
    with pytest.raises(ConfigError, match="mqtt_cert/mqtt_key"):
        BrokerSettings(mqtt="mqtts://a", mqtt_cert=here)
    s = BrokerSettings(mqtt="mqtts://a", mqtt_ca=here, mqtt_cert=here, mqtt_key=here)
    assert s.broker().tls == TlsFiles(ca=str(here), cert=str(here), key=str(here))
