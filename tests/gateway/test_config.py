"""``pak gateway`` settings: layering (file < environment < flag), per-driver defaults, and
every bad value refused at start with a message naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.clock import BUILD_DATE, ClockCheck
from gateway.config import GatewaySettings, load_settings
from gateway.drivers import driver_class
from pak.broker_url import BrokerUrl
from pak.errors import ConfigError

BASE = ["--gateway-id", "gw-1", "--driver", "em4100", "--serial", "/dev/ttyUSB0"]


def load(argv: list[str], env: dict[str, str] | None = None) -> GatewaySettings:
    return load_settings(argv, env=env or {})


def test_defaults_follow_the_driver() -> None:
    s = load(BASE)
    em = driver_class("em4100")
    assert s.exit_after_s == em.default_exit_after
    assert s.baud_rate == em.default_baud
    assert s.default_reader_id == "gw-1"  # a serial reader: the gateway id
    assert s.topic_root == "pak/v1" and s.mqtt_protocol == "5"
    station = load(["--gateway-id", "gw-1", "--driver", "mr7901", "--listen",
                    "tcp://0.0.0.0:4900"])
    assert station.default_reader_id is None  # dial-in: the station's own device id
    assert station.exit_after_s == driver_class("mr7901").default_exit_after
    assert station.listen_address == ("0.0.0.0", 4900)


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('[gateway]\ngateway_id = "from-file"\ndriver = "em4100"\n'
                    'serial = "/dev/ttyS0"\nhealth_every = 5\nspool_max_mb = 64\n'
                    'allow_station = []\n')
    s = load(["--config", str(conf)], {"PAK_GATEWAY_HEALTH_EVERY": "7"})
    assert (s.gateway_id, s.health_every, s.spool_max_mb) == ("from-file", 7.0, 64.0)
    s = load(["--config", str(conf), "--health-every", "9"], {"PAK_GATEWAY_HEALTH_EVERY": "7"})
    assert s.health_every == 9.0


def test_mqtt_url_forms() -> None:
    ep = BrokerUrl.parse("mqtt://gw%2F1:p%40ss@broker.example:1884")
    assert (ep.host, ep.port, ep.tls, ep.username, ep.password) == (
        "broker.example", 1884, False, "gw/1", "p@ss")
    assert BrokerUrl.parse("mqtts://b.example").port == 8883
    assert "p@ss" not in str(load([*BASE, "--mqtt", "mqtt://u:p%40ss@h:1"]).describe())


@pytest.mark.parametrize(("extra", "named"), [
    (["--gateway-id", "gw/1"], "gateway_id"),
    (["--driver", "nope"], "driver"),
    (["--reader-tz", "Mars/Olympus"], "reader_tz"),
    (["--reader-id", "reader 7"], "reader_id"),
    (["--mqtt", "http://broker:1883"], "mqtt"),
    (["--mqtt", "mqtt://broker:99999"], "mqtt"),
    (["--mqtt-protocol", "4"], "mqtt_protocol"),
    (["--mqtt-ca", "/nonexistent/ca.pem"], "mqtt_ca"),
    (["--topic-root", "pak/#"], "topic_root"),
    (["--spool-max-mb", "0"], "spool_max_mb"),
    (["--exit-after", "-1"], "exit_after"),
    (["--exit-after", "500"], "exit_after"),  # longer than max_duration
    (["--health-every", "abc"], "health_every"),
    (["--baud", "12.5"], "baud"),
    (["--max-inflight", "70000"], "max_inflight"),
    (["--model", "no-such-model"], "model"),
    (["--listen", "tcp://0.0.0.0:4900"], "serial/listen"),  # both given
    (["--advertise", "1.2.3.4:4900"], "advertise"),  # serial reader: no stations
    (["--log-level", "loud"], "log_level"),
    (["--link-ping-every", "20"], "link_ping_every"),  # longer than the watchdog
])
def test_bad_values_are_refused_naming_the_setting(extra: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=f"setting {named}"):
        load([*BASE, *extra])


def test_required_and_exclusive() -> None:
    with pytest.raises(ConfigError, match="setting gateway_id"):
        load(["--driver", "em4100", "--serial", "/dev/x"])
    with pytest.raises(ConfigError, match="setting serial/listen"):
        load(["--gateway-id", "g", "--driver", "em4100"])
    with pytest.raises(ConfigError, match="setting driver"):  # a station driver on a serial line
        load(["--gateway-id", "g", "--driver", "mr7901", "--serial", "/dev/x"])
    with pytest.raises(ConfigError, match="setting driver"):
        load(["--gateway-id", "g", "--driver", "em4100", "--listen", "tcp://0.0.0.0:1"])
    with pytest.raises(ConfigError, match="setting mqtt"):  # certificates need mqtts://
        load([*BASE, "--mqtt-cert", __file__, "--mqtt-key", __file__])


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="PAK_GATEWAY_REPUBLISH_AFTER"):
        load(BASE, {"PAK_GATEWAY_REPUBLISH_AFTER": "soon"})


def test_the_command_refuses_with_status_2_and_a_named_setting() -> None:
    p = subprocess.run([sys.executable, "-m", "pak.cli", "gateway", *BASE, "--reader-tz", "X/Y"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "setting reader_tz" in p.stderr


def test_help_has_examples() -> None:
    p = subprocess.run([sys.executable, "-m", "pak.cli", "gateway", "--help"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    assert "examples:" in p.stdout and "--allow-station" in p.stdout
    assert "PAK_GATEWAY_" in p.stdout


def test_clock_before_the_build_date_is_suspect() -> None:
    check = ClockCheck()
    assert check.check(BUILD_DATE).status == "ok"
    from datetime import datetime, timezone

    boot = datetime(1970, 1, 1, 0, 0, 42, tzinfo=timezone.utc)  # noqa: UP017
    st = check.check(boot)
    assert st.suspect and "1970-01-01" in st.reason


def test_a_busy_listen_port_or_unknown_serial_scheme_is_refused_at_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = subprocess.run([sys.executable, "-m", "pak.cli", "gateway", "--gateway-id", "g",
                            "--driver", "mr7901", "--listen", f"tcp://127.0.0.1:{port}",
                            "--spool", str(tmp_path / "s1")],
                           capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and f"127.0.0.1:{port}" in p.stderr
    p = subprocess.run([sys.executable, "-m", "pak.cli", "gateway", "--gateway-id", "g",
                        "--driver", "r2000", "--serial", "nosuch://reader",
                        "--spool", str(tmp_path / "s2")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "nosuch://reader" in p.stderr
    assert not (tmp_path / "s2").exists()  # refused before the spool was made
