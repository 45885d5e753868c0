"""deploy/compose/compose.yaml: UNTESTED with a container engine (none runs here). What can be
checked is: it parses, names the centre's four services, every file it mounts or builds from
exists in the repository (operator-made secrets apart), and every PAK_* variable it sets is a
setting of that service."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from api.settings import ApiSettings
from tests import services
from tracker.config import TrackerSettings

COMPOSE = services.REPO / "deploy" / "compose"
SETTINGS: dict[str, type] = {"TRACKER": TrackerSettings, "API": ApiSettings}


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return doc


def _local(source: str) -> Path | None:
    """A bind mount's or file's path in the repository; None for named volumes and for the
    secrets the operator creates (compose.yaml says how)."""
    if not source.startswith((".", "/")):
        return None
    path = (COMPOSE / source).resolve()
    return None if path.is_relative_to(COMPOSE / "secrets") else path


def test_the_centre_services() -> None:
    assert {"db", "mosquitto", "tracker", "api"} <= set(_doc()["services"])


def test_every_named_file_exists() -> None:
    doc = _doc()
    named: list[str] = []
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            named.append(vol.split(":", 1)[0])
        build = svc.get("build")
        if build:
            context = (COMPOSE / build["context"]).resolve()
            assert context.is_dir(), name
            assert (context / build["dockerfile"]).is_file(), name
        named += [e for e in svc.get("env_file", [])]
    named += [s["file"] for s in doc.get("secrets", {}).values()]
    checked = [p for p in map(_local, named) if p is not None]
    assert checked, "no repository file is mounted"
    missing = [str(p) for p in checked if not p.is_file()]
    assert not missing, missing
    volumes = set(doc.get("volumes", {}))
    for svc in doc["services"].values():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            assert _local(src) is not None or src in volumes or src.startswith("./secrets/"), src


def test_environment_names_real_settings() -> None:
    for name, svc in _doc()["services"].items():
        for var in svc.get("environment", {}):
            if not var.startswith("PAK_"):
                continue
            service, _, setting = var[4:].partition("_")
            fields = {f.name for f in dataclasses.fields(SETTINGS[service])}
            assert setting.lower() in fields, f"{name}: {var} is no setting of pak {service}"


def test_configs_passed_to_the_services_are_mounted() -> None:
    for name in ("tracker", "api"):
        svc = _doc()["services"][name]
        cmd = svc["command"]
        target = cmd[cmd.index("--config") + 1]
        assert any(v.split(":")[1] == target for v in svc["volumes"]), name
