"""A simulated reader behind a real pseudo-terminal: ``pak sim reader``.

The gateway opens the pty's slave side exactly as it opens ``/dev/ttyUSB0``; this runner holds
the master side and plays the device: it answers the host's commands
(:meth:`SimDevice.on_host_bytes`), reports the tags in range at a given rate while the device's
inventory runs, and injects line faults (``firmware_sim/faults.py``).

Every frame the device produces is cut into single frames with the driver's own framer, so a
fault hits one frame and the ground truth (``--log-sent``) can say which reads reached the host
intact. The ground truth is JSON lines::

    {"event": "read", "t": "...Z", "seq": 7, "tag_id": "E200...", "antenna": 1,
     "raw": "A013...", "corrupted": false, "dropped": false, "delivered": true}
    {"event": "enter" | "leave", "t", "tag_id", "antenna"}
    {"event": "connect", "t", "path"}   {"event": "disconnect", "t", "reappear": bool}

``raw`` is the frame as the device made it (before faults). A read is logged when its last byte
has been written to the pty (``delivered``) or was thrown away by a disconnect (not delivered).

Disconnects: without ``reappear`` the line goes dead for ``outage`` seconds on the same pty
(a pulled cable: nothing sent, commands ignored); with it the pty is closed, the ``--link``
symlink disappears, and after the outage a new pty appears behind the same link with a freshly
powered device, as a USB adapter's re-enumeration does. Each new path is printed on stdout.

Output waits for the host: while the pty's buffer is full (nobody reading) no new reads are made,
so the ground truth never claims reads the kernel refused. A reader that reports on its own
(EM4100) starts at once, like the real one: a host that opens the port later and flushes its
input (pyserial does) never sees those first reads, though they are logged as delivered.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import logging
import os
import random
import select
import signal
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson

from firmware_sim.devices import SimDevice, SimTag, device_class
from firmware_sim.faults import FaultConfig, Faults
from firmware_sim.tag_schedule import TagEvent, TagSchedule
from gateway.drivers import Driver, Rejected, make_driver
from pak.errors import ConfigError
from pak.logs import event
from pak.timefmt import format_time, utcnow

__all__ = ["PtyPort", "PtyReader", "ReaderOptions", "SentLog", "build_pool", "open_output",
           "parse_tag"]

log = logging.getLogger("firmware_sim.reader")

# Stop making reads while this many bytes wait for the host: keeps latency and memory bounded.
_BACKLOG_BYTES = 4096
_PROGRESS_EVERY = 5.0
_MAX_WAIT = 0.5
_SETTLE = 0.05
_DRAIN_LIMIT = 1.0  # at the end, wait at most this long for the host to take the last bytes


@dataclass(frozen=True)
class ReaderOptions:
    """Everything ``pak sim reader`` takes (see firmware_sim/cli.py for the flags)."""

    driver: str
    model: str | None = None
    tags: Sequence[SimTag] = ()
    random_tags: int = 0
    antennas: int = 1
    seed: int | None = None
    rate: float = 10.0  # reads per second
    per_round: int = 1  # tags per report / inventory round, when that many are in range
    duration: float | None = None
    count: int | None = None  # reads, then exit
    dwell: float | None = None
    visible: int = 1
    faults: FaultConfig = field(default_factory=FaultConfig)
    link: Path | None = None
    capture: Path | None = None
    log_sent: Path | None = None


def parse_tag(spec: str) -> SimTag:
    """``ID`` or ``ID:ANTENNA`` (hex id, 1-based antenna) -> SimTag."""
    tag_id, _, ant = spec.partition(":")
    tag_id = tag_id.strip().upper()
    if not tag_id or any(c not in "0123456789ABCDEF" for c in tag_id):
        raise ConfigError(f"--tag {spec!r}: the id must be hex digits")
    if not ant:
        return SimTag(tag_id)
    try:
        antenna = int(ant)
    except ValueError:
        raise ConfigError(f"--tag {spec!r}: the antenna must be an integer") from None
    if antenna < 1:
        raise ConfigError(f"--tag {spec!r}: antennas count from 1")
    return SimTag(tag_id, antenna=antenna)


def build_pool(opts: ReaderOptions, device: SimDevice, rng: random.Random) -> list[SimTag]:
    """The given tags, then ``random_tags`` random ones (the device draws ids in its own form)."""
    pool = list(opts.tags)
    for _ in range(opts.random_tags):
        pool.append(SimTag(device.random_tag_id(), antenna=rng.randint(1, opts.antennas)))
    return pool


def open_output(path: Path, flag: str) -> BinaryIO:
    """A file the simulator writes, or a ConfigError naming the flag."""
    try:
        return open(path, "wb")  # closed by its owner at the end of the run
    except OSError as e:
        raise ConfigError(f"{flag} {path}: {e.strerror or e}") from None


class SentLog:
    """The ground-truth file (JSON lines), or nothing."""

    def __init__(self, path: Path | None) -> None:
        self._f = open_output(path, "--log-sent") if path else None

    def write(self, record: dict[str, Any]) -> None:
        if self._f:
            self._f.write(orjson.dumps(record) + b"\n")

    def flush(self) -> None:
        if self._f:
            self._f.flush()

    def close(self) -> None:
        if self._f:
            self._f.close()
            self._f = None


class PtyPort:
    """One pseudo-terminal in raw mode, and optionally a stable symlink to its slave side.

    The runner keeps the slave open itself: on Linux, reading the master of a pty whose slave
    nobody holds fails with EIO, and the gateway opening and closing the port must not look
    like a hang-up to the device.
    """

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.master = -1
        self._slave = -1
        self.path = ""

    def open(self) -> str:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: the line carries binary frames
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        if self.link:
            self._point_link(self.path)
        return self.path

    def close(self) -> None:
        """Close both sides (the gateway's open port sees a hang-up) and remove our link."""
        self._remove_link()
        for fd in (self.master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = -1

    @property
    def is_open(self) -> bool:
        return self.master >= 0

    def unread(self) -> int:
        """Bytes written to the host that it has not read yet (they die with the pty)."""
        if self._slave < 0:
            return 0
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self._slave, termios.FIONREAD, buf)
        except OSError:
            return 0
        return buf[0]

    def _point_link(self, target: str) -> None:
        assert self.link is not None
        if self.link.exists() and not self.link.is_symlink():
            raise ConfigError(f"--link {self.link}: exists and is not a symlink; not replacing it")
        # A new link under a temporary name, then rename over the old one: whoever resolves
        # the link sees the old target or the new one, never a missing or half-made link.
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, self.link)
        except OSError as e:
            raise ConfigError(f"--link {self.link}: {e.strerror or e}") from None

    def _remove_link(self) -> None:
        if self.link and self.path:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.path:
                    os.unlink(self.link)


@dataclass
class _Write:
    due: float
    data: bytes
    records: list[dict[str, Any]]


class PtyReader:
    """The runner: one device on one pty, until stopped, ``duration`` or ``count``."""

    def __init__(self, opts: ReaderOptions, *, stdout: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if opts.rate < 0:
            raise ConfigError("--rate must not be negative")
        if opts.antennas < 1:
            raise ConfigError("--antennas must be at least 1")
        if opts.per_round < 1:
            raise ConfigError("--per-round must be at least 1")
        if opts.faults.reappear and opts.faults.disconnect_every is None:
            # Without disconnects nothing would ever re-appear; SIGUSR1 still forces one.
            log.info("reappear without --disconnect-every: only SIGUSR1 disconnects")
        self.opts = opts
        self._stdout = stdout
        self._clock = clock
        seed = opts.seed if opts.seed is not None else random.randrange(1 << 32)
        self.seed = seed
        self._device_rng = random.Random(f"{seed}:device")
        self._faults = Faults(opts.faults, random.Random(f"{seed}:faults"))
        try:
            self._device_cls = device_class(opts.driver)
            self.driver: Driver = make_driver(opts.driver, opts.model)
        except (ValueError, ImportError) as e:
            raise ConfigError(str(e)) from None
        self.device = self._new_device()
        self.pool = build_pool(opts, self.device, random.Random(f"{seed}:tags"))
        self.port = PtyPort(opts.link)
        self.sent = SentLog(opts.log_sent)
        self._capture: BinaryIO | None = None
        self._queue: deque[_Write] = deque()
        self._queued_bytes = 0
        self._stop = False
        self._disconnect_now = False
        self._outage_until: float | None = None
        self._seq = 0
        self.reads_made = 0
        self.bytes_out = 0
        self._last_write = 0.0
        self.bytes_in = 0
        self.disconnects = 0

    # -- control (signal handlers and tests) -------------------------------------------------

    def request_stop(self) -> None:
        self._stop = True

    def request_disconnect(self) -> None:
        self._disconnect_now = True

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        wake_r, restore = self._install_signals()
        try:
            if self.opts.capture:
                self._capture = open_output(self.opts.capture, "--capture")
            self._connect()
            return self._loop(wake_r)
        finally:
            restore()
            self._discard_queue()
            self.port.close()
            self.sent.close()
            if self._capture:
                self._capture.close()
            event(log, logging.INFO, "sim_reader_stopped", reads=self.reads_made,
                  bytes_out=self.bytes_out, bytes_in=self.bytes_in, disconnects=self.disconnects)

    def _loop(self, wake_r: int) -> int:
        opts, clock = self.opts, self._clock
        start = clock()
        end = start + opts.duration if opts.duration is not None else None
        interval = opts.per_round / opts.rate if opts.rate > 0 else None
        next_tick = start
        next_disconnect = (start + opts.faults.disconnect_every
                           if opts.faults.disconnect_every else None)
        next_progress = start + _PROGRESS_EVERY
        schedule = TagSchedule(self.pool, dwell=opts.dwell, visible=opts.visible, start=start)
        finishing_since: float | None = None

        while not self._stop:
            now = clock()
            # Disconnects and the end of an outage.
            if self._outage_until is not None and now >= self._outage_until:
                self._outage_until = None
                self._reconnect()
            timed_out = next_disconnect is not None and now >= next_disconnect
            if self._outage_until is None and (self._disconnect_now or timed_out):
                self._disconnect_now = False
                self._disconnect(now)
                if next_disconnect is not None:
                    next_disconnect = now + (opts.faults.disconnect_every or 0.0)
            for ev in schedule.update(now):
                self._log_tag_event(ev)

            done = ((end is not None and now >= end)
                    or (opts.count is not None and self.reads_made >= opts.count))
            if not done and interval is not None:
                next_tick = self._emit_due(now, next_tick, interval, schedule)
            self._pump(now)

            if done:
                # Closing the pty throws away what the host has not read yet: wait for it.
                finishing_since = finishing_since or now
                # The kernel moves written bytes to the slave's input queue a moment later, so
                # an empty queue right after a write proves nothing: let the last write settle.
                drained = (not self._queue and now - self._last_write > _SETTLE
                           and self.port.unread() == 0)
                if drained or now - finishing_since > _DRAIN_LIMIT:
                    break
            if now >= next_progress:
                next_progress = now + _PROGRESS_EVERY
                event(log, logging.INFO, "sim_reader_progress", reads=self.reads_made,
                      bytes_out=self.bytes_out, bytes_in=self.bytes_in, pending=self._queued_bytes)
            self.sent.flush()

            wakeups = [next_progress]
            if not done and interval is not None:
                wakeups.append(next_tick)
            if end is not None:
                wakeups.append(end)
            if next_disconnect is not None:
                wakeups.append(next_disconnect)
            if self._outage_until is not None:
                wakeups.append(self._outage_until)
            if (change := schedule.next_change()) is not None:
                wakeups.append(change)
            if self._queue:
                wakeups.append(self._queue[0].due)
            if done:
                wakeups.append(now + 0.01)  # polling the host's progress on the last bytes
            timeout = min(max(min(wakeups) - clock(), 0.0), _MAX_WAIT)
            self._wait(wake_r, timeout)
        return 0

    def _wait(self, wake_r: int, timeout: float) -> None:
        rlist = [wake_r] if wake_r >= 0 else []
        wlist = []
        if self.port.is_open:
            rlist.append(self.port.master)
            if self._queue and self._queue[0].due <= self._clock():
                wlist.append(self.port.master)  # blocked on a full buffer: wait until writable
        try:
            readable, _, _ = select.select(rlist, wlist, [], timeout)
        except InterruptedError:
            return
        if wake_r in readable:
            with contextlib.suppress(OSError):
                os.read(wake_r, 512)
        if self.port.is_open and self.port.master in readable:
            self._on_readable()

    # -- host -> device ----------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = os.read(self.port.master, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # no slave open: cannot happen while we hold ours
                return
            raise
        if not data:
            return
        self.bytes_in += len(data)
        if self._outage_until is not None:
            return  # the line is dead: the device never hears these
        now = self._clock()
        if self.opts.faults.echo:
            self._enqueue(now, data, [])
        replies = self.device.on_host_bytes(data, utcnow())
        event(log, logging.DEBUG, "host_bytes", data=data.hex(), reply=replies.hex())
        if replies:
            self._send_frames(now, replies)

    # -- device -> host ----------------------------------------------------------------------

    def _emit_due(self, now: float, next_tick: float, interval: float,
                  schedule: TagSchedule) -> float:
        """Make the reads whose time has come; return the next tick time."""
        if now - next_tick > 0.25:
            next_tick = now  # after a stall (host not reading, outage) do not burst to catch up
        count = self.opts.count
        while next_tick <= now:
            next_tick += interval
            if (self._outage_until is not None or not self.port.is_open
                    or self._queued_bytes >= _BACKLOG_BYTES or not self.device.inventory_running):
                continue
            # A round with nothing in range is still a round: an inventory-driven reader must
            # answer it (an empty reply) or the host would wait for it.
            want = self.opts.per_round if count is None else min(self.opts.per_round,
                                                                  count - self.reads_made)
            tags = schedule.next_tags(want)
            data = self.device.read_frames(tags, utcnow())
            if data:
                self._send_frames(now, data)
            if count is not None and self.reads_made >= count:
                break
        return next_tick

    def _send_frames(self, now: float, data: bytes) -> None:
        """Queue device output frame by frame, each with its faults and its ground truth."""
        decoder = self.driver.decoder()
        items = decoder.feed(data) + decoder.flush()
        wall = format_time(utcnow())
        for item in items:
            if isinstance(item, Rejected):
                # The device made something its own driver cannot parse: send it unchanged.
                log.warning("device output the driver rejects (%s): %s", item.reason,
                            item.data.hex())
                self._enqueue(now, item.data, [])
                continue
            reads = self.driver.reads(item)
            wire, damage = self._faults.damage(item.raw)
            records = []
            for r in reads:
                self._seq += 1
                records.append({"event": "read", "t": wall, "seq": self._seq, "tag_id": r.tag_id,
                                "antenna": r.antenna, "raw": r.raw.hex().upper(),
                                "corrupted": damage.corrupted, "dropped": damage.dropped})
            self.reads_made += len(records)
            self._enqueue(now, self._faults.garbage() + wire, records)

    def _enqueue(self, now: float, data: bytes, records: list[dict[str, Any]]) -> None:
        due = max(now, self._queue[-1].due) if self._queue else now
        pieces = self._faults.split(data)
        for i, (pause, piece) in enumerate(pieces):
            due += pause
            last = i == len(pieces) - 1
            self._queue.append(_Write(due, piece, records if last else []))
            self._queued_bytes += len(piece)

    def _pump(self, now: float) -> None:
        """Write what is due, as far as the pty takes it."""
        q = self._queue
        while q and q[0].due <= now and self.port.is_open:
            w = q[0]
            try:
                n = os.write(self.port.master, w.data) if w.data else 0
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            if self._capture and n:
                self._capture.write(w.data[:n])
            self.bytes_out += n
            self._last_write = now
            self._queued_bytes -= n
            if n < len(w.data):
                w.data = w.data[n:]
                return
            q.popleft()
            for rec in w.records:
                rec["delivered"] = True
                self.sent.write(rec)

    def _discard_queue(self) -> None:
        for w in self._queue:
            for rec in w.records:
                rec["delivered"] = False
                self.sent.write(rec)
        self._queue.clear()
        self._queued_bytes = 0

    # -- connection life ---------------------------------------------------------------------

    def _new_device(self) -> SimDevice:
        return self._device_cls(self.opts.model, rng=self._device_rng)

    def _connect(self) -> None:
        path = self.port.open()
        if self._stdout is not None:
            print(path, file=self._stdout, flush=True)
        self.sent.write({"event": "connect", "t": format_time(utcnow()), "path": path})
        event(log, logging.INFO, "sim_reader_ready", path=path, driver=self.opts.driver,
              model=self.device.model, link=str(self.opts.link or ""), tags=len(self.pool),
              seed=self.seed)

    def _disconnect(self, now: float) -> None:
        reappear = self.opts.faults.reappear
        self.disconnects += 1
        self._discard_queue()
        self.sent.write({"event": "disconnect", "t": format_time(utcnow()), "reappear": reappear})
        event(log, logging.INFO, "sim_reader_disconnect", path=self.port.path, reappear=reappear,
              outage_s=self.opts.faults.outage)
        if reappear:
            self.port.close()
        self._outage_until = now + self.opts.faults.outage

    def _reconnect(self) -> None:
        if self.port.is_open:  # a pulled cable plugged back in: same pty, same device
            self.sent.write({"event": "connect", "t": format_time(utcnow()),
                             "path": self.port.path})
            event(log, logging.INFO, "sim_reader_reconnect", path=self.port.path)
            return
        self.device = self._new_device()  # re-enumeration: the device was power-cycled
        self._connect()

    def _log_tag_event(self, ev: TagEvent) -> None:
        self.sent.write({"event": ev.kind, "t": format_time(utcnow()), "tag_id": ev.tag.tag_id,
                         "antenna": ev.tag.antenna})
        event(log, logging.DEBUG, f"tag_{ev.kind}", tag_id=ev.tag.tag_id)

    # -- signals -----------------------------------------------------------------------------

    def _install_signals(self) -> tuple[int, Callable[[], None]]:
        """SIGINT/SIGTERM stop, SIGUSR1 disconnects now. A wake-up pipe interrupts select()."""
        if threading.current_thread() is not threading.main_thread():
            return -1, lambda: None
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGUSR1, lambda *_: self.request_disconnect())

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for s, h in old.items():
                signal.signal(s, h)
            os.close(r)
            os.close(w)

        return r, restore
