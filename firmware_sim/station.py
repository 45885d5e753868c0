"""A simulated MR7901 station on real TCP: dials the platform, follows its 0x8008 redirect to a
new connection, logs in, heartbeats and reports tags, as ``pak sim reader --driver mr7901
--connect HOST:PORT`` does.

The protocol decisions are :class:`~firmware_sim.devices.mr7901.StationSession`'s; this module
only owns the socket, the clock and the report rate. Call :func:`run_station` in a thread (or
the main thread of ``pak sim``) and set ``stop`` to end it; it returns the session's counters.

Example (what ``pak sim reader --driver mr7901 --connect 127.0.0.1:4900 --tags A1B2C3D4`` maps
to)::

    stop = threading.Event()
    stats = run_station(("127.0.0.1", 4900), "861694034205896",
                        fixed_tags(["A1B2C3D4"]), stop, rate=2.0)
"""

from __future__ import annotations

import logging
import random
import select
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Protocol

from firmware_sim.devices.base import SimTag
from firmware_sim.devices.mr7901 import (
    Action,
    Close,
    Connect,
    MR7901Device,
    Send,
    StationSession,
)
from gateway.drivers.mr7901.protocol import HEARTBEAT_S, REFUSED_WAIT_S, RESEND_S
from pak.logs import event

__all__ = ["LineFaults", "TagsSource", "fixed_tags", "random_tags", "run_station"]

log = logging.getLogger("pak.sim.station")

#: Called ``rate`` times a second: the tags the station hears at that moment (may be empty).
TagsSource = Callable[[], Sequence[SimTag]]

_POLL_S = 0.1  # longest sleep, so ``stop`` is seen promptly


class LineFaults(Protocol):
    """What a fault injector offers (``firmware_sim.faults.Faults`` fits): damage one packet,
    garbage to put before it, and the writes to cut the bytes into."""

    def damage(self, frame: bytes) -> tuple[bytes, object]: ...

    def garbage(self) -> bytes: ...

    def split(self, data: bytes) -> list[tuple[float, bytes]]: ...


def fixed_tags(tag_ids: Iterable[str], *, antenna: int = 1) -> TagsSource:
    """Every report hears the same tags (8 hex digits each)."""
    tags = [SimTag(tag_id=t.upper(), antenna=antenna) for t in tag_ids]
    return lambda: tags


def random_tags(count: int, *, per_report: int = 1, seed: int | None = None) -> TagsSource:
    """A population of ``count`` random tags; each report hears ``per_report`` of them, on a
    random antenna."""
    rng = random.Random(seed)
    ids = [f"{rng.getrandbits(32):08X}" for _ in range(count)]

    def source() -> list[SimTag]:
        return [SimTag(tag_id=t, antenna=rng.randint(1, 4))
                for t in rng.sample(ids, min(per_report, len(ids)))]
    return source


def run_station(
    connect: tuple[str, int],
    device_id: str,
    tags_source: TagsSource,
    stop: threading.Event,
    *,
    rate: float = 1.0,
    heartbeat_s: float = HEARTBEAT_S,
    resend_s: float = RESEND_S,
    reconnect_s: float = 2.0,
    refused_wait_s: float = REFUSED_WAIT_S,
    tags_per_report: int = 20,
    station_tz: tzinfo | None = None,
    faults: LineFaults | None = None,
    disconnect_every: float | None = None,
    connect_timeout: float = 5.0,
    seed: int | None = None,
) -> Counter[str]:
    """Run one station until ``stop`` is set; return its counters (``connections``,
    ``register_sent``, ``login_sent``, ``heartbeat_sent``, ``data_report_sent``, ``resends``,
    ``relogins``, ``reregisters``, ``tags_acked``, ``tags_dropped``, ...).

    ``connect``: the platform (registration) address. ``tags_source`` is asked ``rate`` times a
    second (0: never) for the tags heard; they queue while the station is offline and go out in
    data reports of up to ``tags_per_report``. The station's clock is the local wall clock, or
    the wall clock in ``station_tz``. ``faults`` damages outgoing packets (a damaged one goes
    unanswered and is resent, as on a real line); ``disconnect_every`` drops the connection
    every so many seconds.
    """
    if rate < 0:
        raise ValueError("rate must not be negative")
    device = MR7901Device(device_id=device_id, rng=random.Random(seed))
    session = StationSession(device, connect, heartbeat_s=heartbeat_s, resend_s=resend_s,
                             reconnect_s=reconnect_s, refused_wait_s=refused_wait_s,
                             tags_per_report=tags_per_report)

    def clock() -> datetime:
        if station_tz is None:
            return datetime.now()
        return datetime.now(station_tz).replace(tzinfo=None)

    link = _Link(faults, connect_timeout)
    pending: deque[Action] = deque(session.start(clock()))
    next_read = time.monotonic()
    next_drop = time.monotonic() + disconnect_every if disconnect_every else None
    try:
        while not stop.is_set():
            while pending and not stop.is_set():
                pending.extend(link.act(pending.popleft(), session, clock))
            timeout = _POLL_S
            deadline = session.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, (deadline - clock()).total_seconds()))
            if rate > 0:
                timeout = min(timeout, max(0.0, next_read - time.monotonic()))
            data = link.receive(timeout, stop)
            if data is not None:
                pending.extend(session.on_bytes(data, clock()) if data
                               else session.connection_lost(clock()))
            mono = time.monotonic()
            if rate > 0 and mono >= next_read:
                tags = tags_source()
                if tags:
                    pending.extend(session.queue_tags(tags, clock()))
                # Keep the cadence, but never try to catch up a backlog of missed reads.
                next_read = max(next_read + 1.0 / rate, mono - 1.0)
            if next_drop is not None and mono >= next_drop and link.sock is not None:
                assert disconnect_every is not None
                event(log, logging.INFO, "station_disconnect_fault", device_id=device_id)
                link.close()
                pending.extend(session.connection_lost(clock()))
                next_drop = mono + disconnect_every
            pending.extend(session.tick(clock()))
    finally:
        link.close()
    return session.stats


class _Link:
    """The station's one TCP connection."""

    def __init__(self, faults: LineFaults | None, connect_timeout: float) -> None:
        self.sock: socket.socket | None = None
        self.faults = faults
        self.connect_timeout = connect_timeout

    def act(self, action: Action, session: StationSession,
            clock: Callable[[], datetime]) -> list[Action]:
        """Carry out one action; return the session's follow-up actions."""
        if isinstance(action, Connect):
            self.close()
            try:
                self.sock = socket.create_connection(action.address, self.connect_timeout)
            except OSError as exc:
                event(log, logging.INFO, "station_connect_failed",
                      address=f"{action.address[0]}:{action.address[1]}", error=str(exc))
                return session.connect_failed(clock())
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            event(log, logging.INFO, "station_connected",
                  address=f"{action.address[0]}:{action.address[1]}")
            return session.connected(clock())
        if isinstance(action, Close):
            self.close()
            return []
        if isinstance(action, Send):
            if self.sock is None:
                return []  # the resend timer covers a message that could not go out
            try:
                self._write(action.data)
            except OSError:
                self.close()
                return session.connection_lost(clock())
        return []

    def _write(self, data: bytes) -> None:
        assert self.sock is not None
        if self.faults is None:
            self.sock.sendall(data)
            return
        data, _ = self.faults.damage(data)
        for pause, chunk in self.faults.split(self.faults.garbage() + data):
            if pause:
                time.sleep(pause)
            self.sock.sendall(chunk)

    def receive(self, timeout: float, stop: threading.Event) -> bytes | None:
        """Bytes from the platform; b"" when the connection ended; None when nothing came."""
        if self.sock is None:
            stop.wait(timeout)
            return None
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.close()
        return data

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
