"""``pak tracker`` as a real subprocess for the ingest tests: started, waited for, killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests import services
from tests.support.wait import eventually

PAK = [sys.executable, "-m", "pak.cli"]


@dataclass
class TrackerProcess:
    args: list[str]
    log: Path
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen([*PAK, "tracker", *self.args,
                                          "--metrics-listen",
                                          f"127.0.0.1:{self.metrics_port}"],
                                         stdout=subprocess.DEVNULL, stderr=fh, env=env,
                                         cwd=services.REPO)
        self.wait_log("mqtt_connected", timeout, count=self.log_text().count("mqtt_connected")
                      + 1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, timeout: float, count: int = 1) -> None:
        def logged() -> bool:
            if self.log_text().count(needle) >= count:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"tracker exited ({self.proc.returncode}):\n"
                                     f"{self.log_text()[-3000:]}")
            return False

        eventually(logged, timeout, f"{needle!r} in the tracker's log", step=0.05,
                   detail=lambda: self.log_text()[-3000:])

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful stop), SIGKILL if it does not end in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode

    def metric(self, name: str) -> float:
        """One sample of the tracker's /metrics (0 when absent)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0


@contextlib.contextmanager
def tracker(tmp: Path, *, mqtt: str, db: str, root: str, client_id: str, group: str = "trk",
            extra: Sequence[str] = ()) -> Iterator[TrackerProcess]:
    t = TrackerProcess(["--mqtt", mqtt, "--db", db, "--topic-root", root,
                        "--client-id", client_id, "--group", group,
                        "--batch-max-age-ms", "50", "--db-retry-max-s", "0.5",
                        "--receipt-interval-ms", "200", *extra],
                       tmp / f"tracker-{client_id}.log", services.free_port())
    try:
        t.start()
        yield t
    finally:
        t.stop()
