"""pak.sdnotify speaks systemd's notification protocol to a real unix datagram socket (a path
and the abstract namespace), is a no-op without $NOTIFY_SOCKET, and WatchedStop reports what the
loop polling it proves. The end-to-end tests run ``pak gateway``, ``pak tracker`` and ``pak api``
as processes under a fake systemd: READY after start-up, WATCHDOG while they run, STOPPING on
SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pak.sdnotify import Notifier, WatchedStop
from tests import services

PAK = [sys.executable, "-m", "pak.cli"]


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env_value = "@" + address[1:] if address.startswith("\0") else address

    def next(self, timeout: float = 10.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def until(self, wanted: str, timeout: float = 15.0) -> list[str]:
        """Messages up to and including the first that contains the line ``wanted``."""
        seen: list[str] = []
        while True:
            msg = self.next(timeout)
            seen.append(msg)
            if wanted in msg.splitlines():
                return seen

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(tmp_path / "notify.sock"))
    yield fake
    fake.close()


def test_messages_reach_a_path_socket(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "2000000"})
    assert n.enabled and n.watchdog_interval == 2.0
    assert n.ready(status="listening")
    assert systemd.next() == "READY=1\nSTATUS=listening"
    assert n.watchdog()
    assert systemd.next() == "WATCHDOG=1"
    assert n.status("spool 12\nrows")
    assert systemd.next() == "STATUS=spool 12 rows"
    assert n.stopping()
    assert systemd.next() == "STOPPING=1"


def test_abstract_namespace() -> None:
    name = "\0" + services.unique("pak-sdnotify")
    fake = FakeSystemd(name)
    try:
        assert fake.env_value.startswith("@")
        n = Notifier({"NOTIFY_SOCKET": fake.env_value})
        assert n.ready()
        assert fake.next() == "READY=1"
    finally:
        fake.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.beat() and not n.stopping()


def test_a_vanished_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000000"})
    assert n.ready() is False
    assert n.beat() is False


def test_watchdog_only_for_this_pid(systemd: FakeSystemd) -> None:
    other = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None and not other.watchdog()
    mine = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "1000000",
                     "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 1.0


def test_beat_sends_at_most_once_per_quarter_interval(systemd: FakeSystemd) -> None:
    now = [100.0]
    n = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "8000000"},
                 clock=lambda: now[0])
    assert n.beat()
    assert systemd.next() == "WATCHDOG=1"
    now[0] += 1.9
    assert not n.beat()
    now[0] += 0.1  # 2.0 s = a quarter of 8 s
    assert n.beat()
    assert systemd.next() == "WATCHDOG=1"


def test_watched_stop_polled_by_a_loop(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "1000000"})
    stop = WatchedStop(n)
    assert not stop.is_set()  # the loop's first turn: start-up is over
    assert systemd.until("WATCHDOG=1") == ["READY=1", "WATCHDOG=1"]
    stop.set()
    assert systemd.next() == "STOPPING=1"
    assert stop.is_set()


def test_watched_stop_polled_from_another_thread_proves_nothing(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "1000000"})
    stop = WatchedStop(n)
    t = threading.Thread(target=stop.is_set)
    t.start()
    t.join()
    n.status("marker")
    assert systemd.next() == "STATUS=marker"  # nothing was sent before it


def test_watched_stop_wait_beats_only_while_alive(systemd: FakeSystemd) -> None:
    n = Notifier({"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "40000"})
    calls: list[bool] = []

    def alive() -> bool:
        calls.append(len(calls) >= 2)  # the workers are "dead" for the first two checks
        return calls[-1]

    stop = WatchedStop(n, alive=alive)
    got: list[str] = []
    calls_at_first_beat: list[int] = []

    def supervisor() -> None:
        got.extend(systemd.until("WATCHDOG=1"))
        calls_at_first_beat.append(len(calls))
        stop.set()
        got.append(systemd.next())

    t = threading.Thread(target=supervisor)
    t.start()
    assert stop.wait() is True  # the main thread, as in pak tracker
    t.join(10)
    assert got == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
    assert calls_at_first_beat[0] >= 3


# --- the services, as processes under a fake systemd -------------------------------------------


def _run(systemd: FakeSystemd, args: list[str], tmp_path: Path, *,
         clean_exit: tuple[int, ...] = (0,)) -> None:
    env = {**os.environ, "NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "400000"}
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen([*PAK, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    try:
        first = systemd.until("READY=1", timeout=30)
        assert all("WATCHDOG=1" not in m for m in first[:-1]), first  # no proof before READY
        systemd.until("WATCHDOG=1")
        systemd.until("WATCHDOG=1")  # and again: it comes from a loop, not once
        proc.send_signal(signal.SIGTERM)
        systemd.until("STOPPING=1")
        assert proc.wait(30) in clean_exit, (tmp_path / "service.log").read_text()
    except BaseException:
        proc.kill()
        proc.wait()
        print((tmp_path / "service.log").read_text())
        raise


@pytest.mark.slow
@pytest.mark.mosquitto
def test_pak_gateway_under_systemd(systemd: FakeSystemd, tmp_path: Path, mqtt_url: str,
                                   topic_root: str) -> None:
    _run(systemd, ["gateway", "--gateway-id", "gw-notify", "--driver", "mr7901",
                   "--listen", "tcp://127.0.0.1:0", "--mqtt", mqtt_url, "--topic-root", topic_root,
                   "--spool", str(tmp_path / "spool")], tmp_path)


@pytest.mark.slow
@pytest.mark.mosquitto
def test_pak_tracker_under_systemd(systemd: FakeSystemd, tmp_path: Path, mqtt_url: str,
                                   topic_root: str) -> None:
    _run(systemd, ["tracker", "--mqtt", mqtt_url, "--db", f"sqlite:///{tmp_path}/t.db",
                   "--client-id", services.unique("trk-notify"), "--topic-root", topic_root],
         tmp_path)


@pytest.mark.slow
def test_pak_api_under_systemd(systemd: FakeSystemd, tmp_path: Path) -> None:
    _run(systemd, ["api", "--db", f"sqlite:///{tmp_path}/a.db",
                   "--port", str(services.free_port())], tmp_path,
         # uvicorn re-raises the SIGTERM it caught once it has shut down; systemd counts an
         # exit by SIGTERM as clean
         clean_exit=(0, -signal.SIGTERM))
