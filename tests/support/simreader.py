"""Test helpers: run ``pak sim reader`` as a real subprocess and play the gateway on its pty."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.drivers import Rejected, make_driver
from pak.types import TagRead

PAK = [sys.executable, "-m", "pak.cli"]


def read_line(stream: IO[str], timeout: float) -> str:
    """One line from a subprocess pipe, or AssertionError after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no line within {timeout} s"
    line = stream.readline()
    assert line, "the simulator closed stdout"
    return line.strip()


@contextlib.contextmanager
def sim_reader(args: Sequence[str], timeout: float = 10.0) -> Iterator[tuple[subprocess.Popen[str],
                                                                            str]]:
    """Start ``pak sim reader ARGS``; yield (process, pty path). Always killed afterwards."""
    proc = subprocess.Popen([*PAK, "sim", "reader", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        try:
            path = read_line(proc.stdout, timeout)
        except AssertionError:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise AssertionError(f"the simulator did not start: {err}") from None
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def open_port(path: str) -> int:
    """Open the pty as the gateway would, but keep what the reader sent before we opened it
    (raw mode set with TCSANOW: the default TCSAFLUSH would throw it away)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd, termios.TCSANOW)
    return fd


@dataclass
class GatewayRun:
    """What the playing gateway received: every byte, and the reads its driver made of them."""

    received: bytearray = field(default_factory=bytearray)
    reads: list[TagRead] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    commands: int = 0


def play_gateway(path: str, driver_name: str, proc: subprocess.Popen[str], *,
                 model: str | None = None, timeout: float = 10.0,
                 watchdog: float = 0.3) -> GatewayRun:
    """Open the pty, send the driver's start commands, answer what it owes (next inventory
    round, acknowledgements), resend the start commands after ``watchdog`` s of silence (a
    corrupted final frame would otherwise stall a command-driven reader), until the simulator
    exits."""
    driver = make_driver(driver_name, model)
    decoder = driver.decoder()
    run = GatewayRun()
    fd = open_port(path)

    def send(data: bytes) -> None:
        os.write(fd, data)
        run.commands += 1

    try:
        for cmd in driver.start_commands():
            send(cmd)
        deadline = time.monotonic() + timeout
        last_rx = time.monotonic()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                if time.monotonic() - last_rx > watchdog:
                    for cmd in driver.start_commands():
                        send(cmd)
                    last_rx = time.monotonic()
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the simulator closed the pty (it exited)
                break
            if not data:
                break
            last_rx = time.monotonic()
            run.received += data
            for item in decoder.feed(data):
                if isinstance(item, Rejected):
                    run.rejected.append(item)
                    continue
                if driver.is_echo(item):
                    continue
                run.reads += driver.reads(item)
                for reply in driver.replies(item, datetime.now(UTC)):
                    send(reply)
        else:
            raise AssertionError(f"the simulator did not finish within {timeout} s")
        for item in decoder.flush():
            if isinstance(item, Rejected):
                run.rejected.append(item)
    finally:
        os.close(fd)
    return run


def ground_truth(path: Path, kind: str = "read") -> list[dict[str, Any]]:
    lines = path.read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r["event"] == kind]


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=timeout)
