"""deploy/config/: each sample loads through its service's real settings loader (a renamed or
removed setting breaks this test), every key it shows, commented-out ones too, is a setting of
that service, and no secret sits in the file or in a URL."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from api.settings import ApiSettings
from gateway.config import GatewaySettings
from gateway.config import load_settings as load_gateway
from pak.settings import load
from tests import services
from tracker.config import TrackerSettings
from tracker.config import load_settings as load_tracker

CONFIG = services.REPO / "deploy" / "config"
CLASSES: dict[str, type] = {"gateway": GatewaySettings, "tracker": TrackerSettings,
                            "api": ApiSettings}
# settings whose check wants an existing file: the sample names where it lives on a server,
# the test gives a file of its own through the environment (which beats the file)
FILES = {"gateway": ["mqtt_ca", "centre_key"], "tracker": ["mqtt_ca", "signing_key"],
         "api": ["signing_key"]}
COMMENTED_KEY = re.compile(r"^#\s*([a-z][a-z0-9_]*)\s*=\s*\S")


def _load(service: str, path: Path, tmp_path: Path) -> Any:
    env: dict[str, str] = {}
    for name in FILES[service]:
        f = tmp_path / name
        f.write_text("placeholder\n")
        env[f"PAK_{service.upper()}_{name.upper()}"] = str(f)
    argv = ["--config", str(path)]
    if service == "gateway":
        return load_gateway(argv, env=env), env
    if service == "tracker":
        return load_tracker(argv, env=env), env
    return load(ApiSettings, "api", argv, env=env)[0], env


@pytest.mark.parametrize("service", sorted(CLASSES))
def test_sample_loads_through_the_real_loader(service: str, tmp_path: Path) -> None:
    path = CONFIG / f"{service}.toml"
    table = tomllib.loads(path.read_text())[service]
    settings, env = _load(service, path, tmp_path)
    assert isinstance(settings, CLASSES[service])
    for key, raw in table.items():
        if f"PAK_{service.upper()}_{key.upper()}" in env:
            continue
        value = getattr(settings, key)
        shown = list(value) if isinstance(value, tuple) else \
            str(value) if isinstance(value, Path) else value
        assert shown == raw, f"{service}.{key}: the file says {raw!r}, the loader made {value!r}"


@pytest.mark.parametrize("service", sorted(CLASSES))
def test_commented_keys_are_settings_too(service: str) -> None:
    fields = {f.name for f in dataclasses.fields(CLASSES[service])}
    shown = [m.group(1) for ln in (CONFIG / f"{service}.toml").read_text().splitlines()
             if (m := COMMENTED_KEY.match(ln.strip()))]
    assert shown, "the sample shows no optional key"
    unknown = sorted(set(shown) - fields)
    assert not unknown, f"{service}.toml shows keys pak {service} does not know: {unknown}"


def test_a_renamed_setting_is_refused(tmp_path: Path) -> None:
    """What the test above relies on: the loader refuses a key it does not know."""
    text = (CONFIG / "tracker.toml").read_text().replace("batch_size =", "batch_sizes =")
    (tmp_path / "tracker.toml").write_text(text)
    with pytest.raises(Exception, match="batch_sizes"):
        _load("tracker", tmp_path / "tracker.toml", tmp_path)


@pytest.mark.parametrize("service", sorted(CLASSES))
def test_no_secret_in_the_sample(service: str) -> None:
    text = (CONFIG / f"{service}.toml").read_text()
    table = tomllib.loads(text)[service]
    secret = {f.name for f in dataclasses.fields(CLASSES[service]) if f.metadata.get("secret")}
    assert not secret & set(table), "secrets come from the environment or a file"
    for url in re.findall(r"[a-z]+://[^\s\"']+", text):
        userinfo = url.split("://", 1)[1].split("@", 1)[0] if "@" in url else ""
        assert ":" not in userinfo, f"a password in a URL: {url}"
