"""``pak api``'s broker settings: the same names as every service, the password outside the
URL (environment or file), TLS files, and nothing secret in the start-up description."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings
from pak.errors import ConfigError
from pak.settings import describe, load

BASE = ["--db", "sqlite:///x"]


def test_the_broker_is_off_unless_given() -> None:
    s, _ = load(ApiSettings, "api", BASE, env={})
    assert s.mqtt is None


def test_password_from_the_environment_or_a_file_never_shown(tmp_path: Path) -> None:
    s, _ = load(ApiSettings, "api", [*BASE, "--mqtt", "mqtt://pak-api@broker:1883"],
                env={"PAK_API_MQTT_PASSWORD": "s3cret"})
    (u,) = s.broker().urls
    assert (u.username, u.password) == ("pak-api", "s3cret")
    assert "s3cret" not in str(describe(s))
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    s, _ = load(ApiSettings, "api", [*BASE, "--mqtt", "mqtts://broker:8883",
                                     "--mqtt-username", "pak-api",
                                     "--mqtt-password-file", str(pw), "--mqtt-ca", str(pw),
                                     "--mqtt-cert", str(pw), "--mqtt-key", str(pw)], env={})
    b = s.broker()
    assert (b.urls[0].username, b.urls[0].password) == ("pak-api", "from-file")
    assert b.tls.ca == b.tls.cert == b.tls.key == str(pw)


def test_tls_files_without_mqtts_are_refused_by_name(tmp_path: Path) -> None:
    f = tmp_path / "ca.pem"
    f.write_text("x")
    with pytest.raises(ConfigError, match="setting mqtt"):
        load(ApiSettings, "api", [*BASE, "--mqtt", "mqtt://broker", "--mqtt-ca", str(f)],
             env={})
