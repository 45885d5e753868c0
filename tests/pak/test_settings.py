"""Layered settings: defaults < TOML file < environment < flags; bad values named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pak.checks import at_least
from pak.errors import ConfigError
from pak.settings import load, setting


@dataclass(frozen=True)
class Demo:
    gateway_id: str = setting(help="id")
    rate: float = setting(1.0, help="rate", check=at_least(0.001))
    port: int = setting(1883, help="port")
    verbose: bool = setting(False, help="verbose")
    allow: tuple[str, ...] = setting(help="allowed", repeat=True, default_factory=tuple)
    tz: str | None = setting(None, help="zone")


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('[demo]\ngateway_id = "from-file"\nrate = 2.5\nport = 1\n')
    env = {"PAK_DEMO_GATEWAY_ID": "from-env", "PAK_DEMO_PORT": "2"}
    s, _ = load(Demo, "demo", ["--config", str(cfg), "--port", "3"], env=env)
    assert (s.gateway_id, s.rate, s.port) == ("from-env", 2.5, 3)


def test_defaults_lists_and_bools() -> None:
    s, _ = load(Demo, "demo", ["--gateway-id", "g", "--allow", "a", "--allow", "b",
                               "--verbose"], env={})
    assert s.allow == ("a", "b") and s.verbose is True and s.rate == 1.0 and s.tz is None
    s, _ = load(Demo, "demo", [], env={"PAK_DEMO_GATEWAY_ID": "g", "PAK_DEMO_ALLOW": "x, y",
                                       "PAK_DEMO_VERBOSE": "no"})
    assert s.allow == ("x", "y") and s.verbose is False


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        ([], {}, "setting gateway_id: required"),
        (["--gateway-id", "g", "--rate", "-1"], {}, "setting rate (flag --rate): must be"),
        (["--gateway-id", "g"], {"PAK_DEMO_PORT": "eighty"}, "PAK_DEMO_PORT"),
        (["--gateway-id", "g"], {"PAK_DEMO_VERBOSE": "maybe"}, "not a boolean"),
    ],
)
def test_bad_values_name_the_setting(argv: list[str], env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(Demo, "demo", argv, env=env)
    assert needle in str(e.value)


def test_unknown_key_in_file_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('gateway_id = "g"\nspeed = 3\n')
    with pytest.raises(ConfigError, match="speed"):
        load(Demo, "demo", ["--config", str(cfg)], env={})


def test_broker_flags_on_a_plain_argparse_command(tmp_path: Path) -> None:
    import argparse

    from pak.settings import add_broker_flags, broker_from_flags

    p = argparse.ArgumentParser()
    add_broker_flags(p)
    assert broker_from_flags(p.parse_args([]), "watchlist", env={}) is None
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    ns = p.parse_args(["--mqtt", "mqtts://u@broker:8883", "--mqtt-ca", str(pw)])
    b = broker_from_flags(ns, "watchlist", env={"PAK_WATCHLIST_MQTT_PASSWORD_FILE": str(pw)})
    assert b is not None and b.urls[0].password == "s3cret" and b.tls.ca == str(pw)
    with pytest.raises(ConfigError, match="setting mqtt_ca"):
        broker_from_flags(p.parse_args(["--mqtt", "mqtts://b", "--mqtt-ca", "/nonexistent"]),
                          "watchlist", env={})
    with pytest.raises(SystemExit):
        p.parse_args(["--mqtt-protocol", "5"])  # the caller's choice, not a flag here
