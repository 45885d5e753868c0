"""What the end-to-end benchmarks run on: a private Mosquitto with the project's deploy
configuration, a scratch PostgreSQL database, and ``pak`` subprocesses that are always
stopped, however the benchmark ends.

Never the shared services' state: the broker is our own (a free port, a temporary folder), the
database a fresh one dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pak.errors import PakError

__all__ = ["PAK", "REPO", "BenchError", "Procs", "free_port", "private_mosquitto",
           "scratch_postgres", "stop_process", "wait_port"]

REPO = Path(__file__).resolve().parent.parent
PAK = [sys.executable, "-m", "pak.cli"]


class BenchError(PakError):
    """A benchmark could not set up what it measures (a service missing, a process died)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def private_mosquitto(workdir: Path, overrides: Sequence[str] = ()) -> Iterator[str]:
    """A Mosquitto on a free port with deploy/mosquitto/pak.conf's limits (its listener,
    authentication and persistence lines replaced by ours; ``overrides``, whole
    ``option value`` lines, replace the file's lines of the same option). Yields its URL."""
    exe = shutil.which("mosquitto")
    if exe is None:
        raise BenchError("mosquitto is not installed (deploy/setup-services.sh installs it)")
    port = free_port()
    base = REPO / "deploy" / "mosquitto" / "pak.conf"
    skip: tuple[str, ...] = ("listener", "persistence", "log_dest", "pid_file", "acl_file",
                             "password_file", "allow_anonymous", "include_dir", "autosave")
    skip += tuple(o.split()[0] for o in overrides if o.strip())
    kept = [ln for ln in (base.read_text().splitlines() if base.exists() else [])
            if not ln.strip().startswith(skip)] + list(overrides)
    d = workdir / "mosquitto"
    d.mkdir()
    os.chmod(d, 0o777)  # mosquitto may drop privileges to its own user
    conf = d / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true",
                               "persistence false", f"log_dest file {d}/mosquitto.log",
                               *kept, ""]))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 10)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def scratch_postgres(base_url: str, prefix: str = "pak_bench_") -> Iterator[str]:
    """A fresh database (timescaledb created by the migrations) on ``base_url``'s server,
    named ``prefix`` and a random suffix, dropped afterwards. Yields its URL. The tests' scratch
    database is this one too (``tests/services.py``)."""
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        raise BenchError(f"cannot create a scratch database on {base_url}: {e}") from None
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Procs:
    """Subprocesses of one benchmark run, each logging to its own file in ``workdir``;
    :meth:`stop_all` ends them (SIGTERM, then SIGKILL) in reverse order of start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, args: Sequence[str], *, stdout: int | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(list(args), stdout=stdout if stdout is not None else log,
                                stderr=log, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self._procs.append((name, proc, log))
        return proc

    def pak(self, name: str, *args: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
        return self.start(name, [*PAK, *args], stdout=stdout)

    def log_text(self, name: str) -> str:
        p = self.workdir / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_log(self, name: str, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = next(p for n, p, _ in self._procs if n == name)
        while needle not in self.log_text(name):
            if proc.poll() is not None:
                raise BenchError(f"{name} exited ({proc.returncode}):\n"
                                 f"{self.log_text(name)[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"no {needle!r} from {name} after {timeout}s:\n"
                                 f"{self.log_text(name)[-2000:]}")
            time.sleep(0.05)

    def check_alive(self, names: Collection[str] | None = None) -> None:
        """BenchError when a process (of ``names``, or any) has exited."""
        for name, proc, _ in self._procs:
            if (names is None or name in names) and proc.poll() is not None:
                raise BenchError(f"{name} exited ({proc.returncode}):\n"
                                 f"{self.log_text(name)[-2000:]}")

    def stop(self, name: str, timeout: float = 15.0) -> int | None:
        for n, proc, _ in self._procs:
            if n == name:
                return stop_process(proc, timeout)
        return None

    def stop_all(self) -> None:
        for _, proc, log in reversed(self._procs):
            stop_process(proc, 15.0)
            log.close()
        self._procs.clear()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0,
                 kill_wait: float = 5.0) -> int | None:
    """SIGTERM, ``timeout`` s to exit, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_wait)
    return proc.returncode


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pak-bench-"))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
