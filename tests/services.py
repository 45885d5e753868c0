"""Real services for the test suite: the shared Mosquitto and PostgreSQL, and private
instances (on free ports, in temporary folders) for tests that kill or restart them.

Outside CI a missing service skips the test with the reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmarks.harness import free_port, scratch_postgres

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED_MQTT = ("127.0.0.1", 1883)
SHARED_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parent.parent


def require(ok: bool, why: str) -> None:
    """Skip (outside CI) or fail (in CI) when a service a test needs is missing."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {why}")
    pytest.skip(why)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses: for topics roots and databases."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# --- Mosquitto --------------------------------------------------------------------------------

@dataclass
class PrivateMosquitto:
    """A Mosquitto of our own, on a free port, with the project's deploy/ configuration."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        base = (REPO / "deploy" / "mosquitto" / "pak.conf")
        limits = base.read_text() if base.exists() else ""
        # The deploy file's listener/persistence lines are replaced by ours.
        kept = [ln for ln in limits.splitlines()
                if not ln.strip().startswith(("listener", "persistence_location", "log_dest",
                                               "pid_file", "acl_file", "password_file",
                                               "allow_anonymous", "include_dir"))]
        conf.write_text("\n".join([
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir}/mosquitto.log",
            *kept, "",
        ]))
        return conf

    def start(self, config: str | None = None) -> None:
        """Start with the project's limits and an anonymous listener on :attr:`port`, or with
        ``config``, a whole configuration text (one of its listeners must be :attr:`port`)."""
        if config is None:
            conf = self.write_config()
        else:
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(config)
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port("127.0.0.1", self.port)

    def password_file(self, users: Mapping[str, str], name: str = "passwd") -> Path:
        """A Mosquitto password file (made by ``mosquitto_passwd``) of ``users``: name ->
        password, in the work folder, readable by the broker after it drops privileges."""
        require(shutil.which("mosquitto_passwd") is not None, "mosquitto_passwd is not installed")
        path = self.workdir / name
        for i, (user, secret) in enumerate(users.items()):
            subprocess.run(["mosquitto_passwd", "-b", *([] if i else ["-c"]), str(path), user,
                            secret], check=True, capture_output=True)
        path.chmod(0o644)
        return path

    def kill(self) -> None:
        """kill -9: no clean shutdown, no persistence flush."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def private_mosquitto(start: bool = True) -> Iterator[PrivateMosquitto]:
    require(shutil.which("mosquitto") is not None, "mosquitto is not installed "
            "(make test installs it: deploy/setup-services.sh)")
    with tempfile.TemporaryDirectory(prefix="pak-mosq-") as d:
        os.chmod(d, 0o777)  # mosquitto may drop privileges to its own user
        m = PrivateMosquitto(Path(d))
        if start:
            m.start()
        try:
            yield m
        finally:
            m.stop()


def require_shared_mosquitto() -> str:
    require(port_open(*SHARED_MQTT), "no Mosquitto on 127.0.0.1:1883")
    return f"mqtt://{SHARED_MQTT[0]}:{SHARED_MQTT[1]}"


# --- PostgreSQL + TimescaleDB ---------------------------------------------------------------

def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    versions = sorted((p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
                      key=lambda p: int(p.name) if p.name.isdigit() else 0)
    return versions[-1] / "bin" if versions else None


def timescale_installed() -> bool:
    b = _pg_bin()
    if b is None:
        return False
    share = Path("/usr/share/postgresql") / b.parent.name / "extension" / "timescaledb.control"
    return share.exists()


def shared_pg_available() -> bool:
    return port_open("127.0.0.1", 5432)


@contextlib.contextmanager
def scratch_database(base_url: str = SHARED_PG) -> Iterator[str]:
    """A fresh database with timescaledb created, dropped afterwards. Yields its URL."""
    require(shared_pg_available(), "no PostgreSQL on 127.0.0.1:5432")
    require(timescale_installed(), "timescaledb is not installed (make test installs it)")
    with scratch_postgres(base_url, prefix="pak_test_") as url:
        yield url


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary folder, run as ``postgres``,
    timescaledb preloaded), on a free port, for tests that restart or kill the database."""

    workdir: Path
    port: int = field(default_factory=free_port)

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        b = _pg_bin()
        assert b is not None
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(str(b / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                     f"unix_socket_directories = '{self.workdir}'\n"
                     "shared_preload_libraries = 'timescaledb'\n"
                     "timescaledb.telemetry_level = off\nfsync = off\n")

    def start(self) -> None:
        b = _pg_bin()
        assert b is not None
        self._run(str(b / "pg_ctl"), "-D", str(self.datadir), "-l",
                  str(self.workdir / "pg.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        b = _pg_bin()
        assert b is not None
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(b / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """kill -9 the postmaster (crash recovery on the next start)."""
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    require(_pg_bin() is not None, "PostgreSQL server binaries are not installed")
    require(timescale_installed(), "timescaledb is not installed (make test installs it)")
    d = tempfile.mkdtemp(prefix="pak-pg-")
    pg = PrivatePostgres(Path(d))
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(d, ignore_errors=True)
