"""deploy/systemd/: every unit passes ``systemd-analyze verify`` (on a copy whose ExecStart is
this venv's ``pak``, so "command not executable" would also be caught), says what the services
rely on (Type=notify with a watchdog, the dedicated user, the hardening), and the sysusers file
creates that user. With CI=true a missing systemd-analyze fails, never skips."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services

UNITS = services.REPO / "deploy" / "systemd"
NAMES = ("pak-gateway@.service", "pak-tracker.service", "pak-api.service")
OTHERS = ("pak-db-retention.service", "pak-db-retention.timer")
INSTALLED_PAK = "/opt/pak/venv/bin/pak"
VENV_PAK = Path(sys.executable).parent / "pak"


def _unit(name: str) -> configparser.RawConfigParser:
    # systemd allows repeated keys; keep the last value of each (enough for these checks)
    p = configparser.RawConfigParser(strict=False, interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read(UNITS / name)
    return p


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    services.require(tool is not None, "systemd-analyze is not installed (make services)")
    assert tool is not None
    return tool


@pytest.mark.parametrize("name", NAMES + OTHERS)
def test_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    tool = _analyze()
    assert VENV_PAK.is_file(), "the venv has no pak script (make venv)"
    for unit in (name, name.replace(".timer", ".service")):  # a timer needs its service
        text = (UNITS / unit).read_text()
        if unit.endswith(".service"):
            assert f"ExecStart={INSTALLED_PAK} " in text
        (tmp_path / unit).write_text(text.replace(INSTALLED_PAK, str(VENV_PAK)))
    r = subprocess.run([tool, "verify", "--man=no", str(tmp_path / name)], capture_output=True,
                       text=True, timeout=60)
    # verify exits 0 on unknown keys and unparsable values, only warning: any output fails
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        r.stdout + r.stderr


def test_verify_catches_a_bad_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad value are reported."""
    tool = _analyze()
    text = (UNITS / "pak-api.service").read_text().replace(INSTALLED_PAK, str(VENV_PAK))
    copy = tmp_path / "pak-api.service"
    copy.write_text(text.replace("WatchdogSec=30", "WatchdogSec=thirty"))
    r = subprocess.run([tool, "verify", "--man=no", str(copy)], capture_output=True, text=True,
                       timeout=60)
    assert "WatchdogSec" in r.stderr or "thirty" in r.stderr, r.stderr


@pytest.mark.parametrize("name", NAMES)
def test_units_run_as_pak_with_watchdog_and_hardening(name: str) -> None:
    s = _unit(name)["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert int(s["WatchdogSec"]) >= 10
    assert s["Restart"] == "always"
    assert s["User"] == "pak" and s["Group"] == "pak"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes",
                       "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}.items():
        assert s[key] == value, key
    assert s["StateDirectory"].startswith("pak/")
    assert "EnvironmentFile" in s  # secrets from the environment, never from the TOML file


def test_gateway_unit_is_one_per_reader() -> None:
    s = _unit("pak-gateway@.service")["Service"]
    assert s["SupplementaryGroups"] == "dialout"
    assert s["StateDirectory"] == "pak/gateway/%i"
    assert "--config /etc/pak/gateway/%i.toml" in s["ExecStart"]
    assert "--spool %S/pak/gateway/%i" in s["ExecStart"]
    assert "PrivateDevices" not in s  # it needs the serial port


def test_sysusers_creates_the_pak_user(tmp_path: Path) -> None:
    tool = shutil.which("systemd-sysusers")
    services.require(tool is not None, "systemd-sysusers is not installed")
    assert tool is not None
    (tmp_path / "etc").mkdir()
    subprocess.run([tool, f"--root={tmp_path}", str(UNITS / "pak.sysusers.conf")], check=True,
                   capture_output=True, timeout=60)
    users = {ln.split(":")[0]: ln.split(":") for ln in
             (tmp_path / "etc" / "passwd").read_text().splitlines()}
    assert users["pak"][6] == "/usr/sbin/nologin"
    assert int(users["pak"][2]) < 1000  # a system user
