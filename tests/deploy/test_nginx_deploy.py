"""deploy/nginx/pak-api.conf: nginx accepts it (``nginx -t`` with certificates the test makes),
and its unbuffered location matches the API's live alert stream route as the code declares it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from api.app import create_app
from api.settings import ApiSettings
from pak.settings import load
from tests import services

CONF = services.REPO / "deploy" / "nginx" / "pak-api.conf"


def _tool(name: str) -> str:
    tool = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    services.require(tool is not None, f"{name} is not installed (make services)")
    assert tool is not None
    return tool


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx, openssl = _tool("nginx"), _tool("openssl")
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=pak.police.example", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    site = CONF.read_text()
    assert "/etc/pak/tls/api.crt" in site and "/etc/pak/tls/api.key" in site
    (tmp_path / "pak-api.conf").write_text(site.replace("/etc/pak/tls/api.crt", str(cert))
                                           .replace("/etc/pak/tls/api.key", str(key)))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/pak-api.conf;\n}}\n")
    r = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                        "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "syntax is ok" in r.stderr, r.stderr


def test_the_sse_location_matches_the_stream_route(tmp_path: Path) -> None:
    m = re.search(r"location ~ (\S+) \{\n(.*?)\n    \}", CONF.read_text(), flags=re.S)
    assert m is not None
    pattern, body = m.group(1), m.group(2)
    assert "proxy_buffering off;" in body
    settings, _ = load(ApiSettings, "api", ["--db", f"sqlite:///{tmp_path}/a.db"],
                       env={})
    paths = list(create_app(settings).openapi()["paths"])
    streams = [p for p in paths if p.endswith("/alerts/stream")]
    assert streams, paths
    for p in streams:
        assert re.match(pattern, p), f"{p} is not matched by nginx's {pattern}"
