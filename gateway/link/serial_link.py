"""A reader on a serial line: open, initialise, read, and reopen whenever the line dies.

Any pyserial URL works: a device path, a ``/dev/serial/by-id/...`` symlink (opened by path on
every attempt, so after a USB re-enumeration it follows whatever device the link points at
now), ``socket://host:port`` for a serial device server, ``rfc2217://...``.

One connection, as :meth:`SerialLink.run` drives it::

    connecting --open ok--> connected --port error / EOF / watchdog--> backoff --> connecting
        |                      |  start_commands() once, then for every frame:
        +--open fails--> backoff     echo?  -> ignored (counted)
                               |     reads  -> sink(read, reader_id, received_at)
                               |     replies(frame, now) -> written back
                               |  quiet (see below) -> ping_command()
                               |  a ping answered after such a silence -> start_commands() again
                               +  no frame for watchdog_s   -> dead: close, back off, reopen

Only a valid frame that is not our own echo proves the reader is alive: garbage bytes (a wrong
baud rate, a floating RS-485 line) and the echo of our ping do not keep a dead link "up".
The backoff is reset only by a connection that delivered such a frame, so a port that opens
but never answers is retried at the capped rate, not in a tight loop.

When is a reader "quiet"? After ``ping_every_s`` without a frame at the latest; sooner for a
reader that was streaming: after ten of its usual gaps between frames (a moving average), but
never under half a second. A command-response reader (Chafon, the R2000's re-issued 0x89) waits
for the gateway after each round, so one corrupted final frame would otherwise cost a whole
``ping_every_s`` of blindness; the early ping and the re-arm after its answer cut that to about
half a second.

Logging: each transition once. A failure is logged when it starts (or its reason changes);
repeats of the same failure while the reader stays away go to debug; the first frame after a
failure logs ``link_restored`` with how long the reader was gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import serial

from gateway.drivers.base import Driver, Frame, Rejected, StreamDecoder
from gateway.link import ReadSink, deliver
from gateway.link.backoff import Backoff
from gateway.link.stats import DecodeTotals, ErrorsOnce, link_status
from pak.errors import ConfigError
from pak.logs import event
from pak.timefmt import utcnow

__all__ = ["LinkState", "SerialLink"]

log = logging.getLogger(__name__)

LinkState = Literal["connected", "connecting", "backoff", "down"]

#: Longest a blocking wait lasts, so ``stop`` and the watchdog are looked at this often.
_TICK_S = 0.1
#: A write that cannot complete in this time means the line is wedged (flow control stuck,
#: device server gone): treated like any other port error.
_WRITE_TIMEOUT_S = 2.0
_READ_CHUNK = 65536
#: Earliest ping after the last frame, however fast the reader was streaming.
_MIN_QUIET_S = 0.5
#: A reader is quiet after this many of its usual gaps between frames.
_QUIET_GAPS = 10.0
#: Weight of the newest gap in the moving average of gaps between frames.
_GAP_ALPHA = 0.1

_PortErrors = (serial.SerialException, OSError)


class _Dead(Exception):
    """Ends one connection; ``key`` groups repeats of the same failure for logging."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(detail)
        self.key = key
        self.detail = detail


class SerialLink:
    """The one owner of a serial reader's reconnect loop (run it in its own thread)."""

    def __init__(
        self,
        url: str,
        driver_factory: Callable[[], Driver],
        *,
        baud: int,
        reader_id: str,
        sink: ReadSink,
        watchdog_s: float = 10.0,
        ping_every_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not watchdog_s > 0:
            raise ConfigError(f"serial link watchdog must be > 0 s (got {watchdog_s})")
        if not 0 < ping_every_s <= watchdog_s:
            raise ConfigError(f"serial link ping interval must be in (0, watchdog={watchdog_s}] s "
                              f"(got {ping_every_s})")
        if baud <= 0:
            raise ConfigError(f"baud rate must be positive (got {baud})")
        try:
            # Parses the scheme only (no I/O): an unknown protocol is a setting to refuse at
            # start, not a failure to retry forever.
            serial.serial_for_url(url, baudrate=baud, do_not_open=True)
        except ValueError as e:
            raise ConfigError(f"serial URL {url!r}: {e}") from None
        self.url = url
        self.reader_id = reader_id
        self._driver_factory = driver_factory
        self._baud = baud
        self._sink = sink
        self._watchdog_s = watchdog_s
        self._ping_every_s = ping_every_s
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._clock = clock

        self._state: tuple[LinkState, datetime] = ("down", clock())
        self._totals = DecodeTotals()
        self._device: str | None = None
        self._last_error: str | None = None
        self._connects = 0
        self._open_failures = 0
        self._reads = 0
        self._echoes = 0
        self._pings = 0
        self._rearms = 0
        self._sink_errors = 0
        self._driver_errors = 0
        # Logging state: the failure currently logged (None while healthy), and since when.
        self._incident: str | None = None
        self._incident_since = 0.0
        self._ever_up = False
        self._errors_logged = ErrorsOnce(log, "link")

    # -- public ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Open, read and reopen until ``stop`` is set. Blocks; never raises on port trouble."""
        try:
            while not stop.is_set():
                self._set_state("connecting")
                try:
                    port = self._open()
                except (*_PortErrors, ValueError) as e:
                    self._open_failures += 1
                    self._failed(f"open:{e}", "link_open_failed", error=str(e))
                else:
                    self._connection(port, stop)
                if stop.is_set():
                    break
                self._set_state("backoff")
                stop.wait(self._backoff.next())
        finally:
            self._set_state("down")

    def status(self) -> dict[str, Any]:
        state, since = self._state
        return link_status(
            state=state, since=since, url=self.url, reconnects=max(0, self._connects - 1),
            reads=self._reads, echoes=self._echoes, totals=self._totals,
            extra={
                "reader_id": self.reader_id,
                "device": self._device,
                "last_error": self._last_error,
                "open_failures": self._open_failures,
                "pings": self._pings,
                "rearms": self._rearms,
            },
            sink_errors=self._sink_errors, driver_errors=self._driver_errors,
        )

    # -- one connection ---------------------------------------------------------------------

    def _open(self) -> serial.SerialBase:
        # timeout=0: reads return what is there at once; waiting is done with select() on the
        # port's descriptor, so one read takes a whole burst (a socket:// port reports only
        # "readable", not how much, and a blocking read(n) would wait for n bytes).
        port = serial.serial_for_url(self.url, baudrate=self._baud, timeout=0,
                                     write_timeout=_WRITE_TIMEOUT_S)
        if _fileno(port) is None:
            port.timeout = _TICK_S  # rfc2217://, loop://: no descriptor, block in read()
        return port

    def _connection(self, port: serial.SerialBase, stop: threading.Event) -> None:
        """Run one open port until it dies or ``stop``."""
        self._connects += 1
        self._device = _device_of(self.url)
        driver = self._driver_factory()
        decoder = driver.decoder()
        self._totals.attach(decoder)
        self._set_state("connected")
        if not self._ever_up:
            self._ever_up = True
            event(log, logging.INFO, "link_connected", url=self.url, device=self._device,
                  reader_id=self.reader_id)
        else:
            event(log, logging.DEBUG, "link_reopened", url=self.url, device=self._device)
        session = _Session(self, port, driver, decoder)
        try:
            session.run(stop)
        except _Dead as dead:
            self._failed(dead.key, "link_lost", reason=dead.key, error=dead.detail,
                         connected_s=round(time.monotonic() - session.opened, 3),
                         had_frames=session.answered)
        finally:
            for item in self._totals.detach(decoder):
                if isinstance(item, Rejected):
                    event(log, logging.DEBUG, "link_dropped_tail", url=self.url,
                          reason=item.reason, bytes=len(item.data))
            with contextlib.suppress(Exception):
                port.close()

    # -- bookkeeping ------------------------------------------------------------------------

    def _set_state(self, state: LinkState) -> None:
        if self._state[0] != state:
            self._state = (state, self._clock())

    def _failed(self, key: str, name: str, **fields: Any) -> None:
        """A connection attempt or a connection failed: log it if it is news."""
        self._last_error = str(fields.get("error", key))
        if self._incident is None:
            self._incident_since = time.monotonic()
        if key != self._incident:
            self._incident = key
            event(log, logging.WARNING, name, url=self.url,
                  retry_in_s=round(self._backoff.base, 3), **fields)
        else:
            event(log, logging.DEBUG, name, url=self.url, repeat=True, **fields)

    def _answered(self) -> None:
        """The first frame of a connection: the reader is there; after a failure, it is back."""
        self._backoff.reset()
        if self._incident is not None:
            event(log, logging.INFO, "link_restored", url=self.url, device=self._device,
                  down_s=round(time.monotonic() - self._incident_since, 3),
                  reconnects=max(0, self._connects - 1))
            self._incident = None

    def _error_once(self, kind: str, exc: BaseException) -> None:
        self._errors_logged.log(kind, exc, url=self.url, reader_id=self.reader_id)


class _Session:
    """One open port: the read loop, the ping and the watchdog."""

    def __init__(self, link: SerialLink, port: serial.SerialBase, driver: Driver,
                 decoder: StreamDecoder) -> None:
        self.link = link
        self.port = port
        self.driver = driver
        self.decoder = decoder
        self.opened = time.monotonic()
        self.last_frame = self.opened
        self.last_ping: float | None = None
        self.gap: float | None = None  # moving average of the gaps between frames
        self.answered = False  # a valid, non-echo frame arrived on this connection
        self.fd = _fileno(port)
        # Plain reads and writes on the descriptor when it is non-blocking (ttys and sockets
        # as pyserial opens them): the hot path then costs one select, one read, one write.
        self.direct = self.fd is not None and not os.get_blocking(self.fd)
        self.ping = driver.ping_command()

    def run(self, stop: threading.Event) -> None:
        self.write(b"".join(self.driver.start_commands()))
        link = self.link
        while not stop.is_set():
            data = self.read()
            now = time.monotonic()
            if data:
                received_at = link._clock()
                for item in link._totals.feed(self.decoder, data):
                    if not isinstance(item, Rejected):
                        self.on_frame(item, received_at, now)
            silent = now - self.last_frame
            if silent >= link._watchdog_s:
                raise _Dead("silent", f"no frame from the reader for {silent:.1f} s")
            quiet = self.quiet_after()
            if (self.ping is not None and silent >= quiet
                    and (self.last_ping is None or now - self.last_ping >= quiet)):
                self.last_ping = now
                link._pings += 1
                self.write(self.ping)

    def on_frame(self, frame: Frame, received_at: datetime, now: float) -> None:
        link, driver = self.link, self.driver
        try:
            if driver.is_echo(frame):
                link._echoes += 1
                return
            pinged_after_silence = (self.last_ping is not None
                                    and self.last_ping >= self.last_frame)
            if self.answered and not pinged_after_silence:
                # A silence we had to break with a ping is not the reader's rhythm: keeping it
                # out stops each lost frame from stretching the next wait.
                gap = now - self.last_frame
                self.gap = gap if self.gap is None else self.gap + _GAP_ALPHA * (gap - self.gap)
            self.last_frame = now
            if not self.answered:
                self.answered = True
                link._answered()
            reads = driver.reads(frame)
            out = driver.replies(frame, received_at)
            if pinged_after_silence and driver.is_ping_reply(frame):
                # Alive but quiet: a reader that reset (brown-out, watchdog of its own) has
                # forgotten the inventory we started; start it again.
                link._rearms += 1
                out = [*driver.start_commands(), *out]
        except Exception as e:  # a driver bug must not take the reader offline
            link._driver_errors += 1
            link._error_once("driver", e)
            return
        link._reads += len(reads)
        link._sink_errors += deliver(link._sink, reads, link.reader_id, received_at,
                                     link._error_once)
        if out:
            self.write(b"".join(out))

    def quiet_after(self) -> float:
        """Seconds without a frame after which the reader is pinged (module docstring)."""
        limit = self.link._ping_every_s
        if self.gap is None:
            return limit
        return min(limit, max(_MIN_QUIET_S, _QUIET_GAPS * self.gap))

    def read(self) -> bytes:
        try:
            if self.fd is None:
                # No descriptor to wait on: block in read() for up to one tick.
                data = self.port.read(1)
                # in_waiting is on every concrete port class, though not on SerialBase.
                waiting = int(getattr(self.port, "in_waiting", 0)) if data else 0
                return data + self.port.read(waiting) if waiting else data
            ready, _, _ = select.select([self.fd], [], [], _TICK_S)
            if not ready:
                return b""
            # Direct: one system call for the whole burst (pyserial's read() selects again).
            data = (os.read(self.fd, _READ_CHUNK) if self.direct
                    else self.port.read(_READ_CHUNK))
        except (BlockingIOError, InterruptedError):
            return b""
        except serial.SerialException as e:  # (an OSError subclass: caught first)
            raise _Dead("port_error", str(e)) from None
        except OSError as e:  # EIO: a USB adapter pulled; ECONNRESET on a socket
            raise _Dead("port_error", f"read failed: {e}") from None
        if not data:
            # Readable yet empty: a pty whose master closed, a disconnected tty, a socket
            # closed by the device server.
            raise _Dead("eof", "end of file: the device or the far end went away")
        return data

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.direct:
            assert self.fd is not None
            # A command is a few bytes and the kernel buffer is nearly always free: write it
            # at once; only what does not fit goes through pyserial's timed write.
            try:
                data = data[os.write(self.fd, data):]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                raise _Dead("port_error", f"write failed: {e}") from None
            if not data:
                return
        try:
            self.port.write(data)
        except _PortErrors as e:
            raise _Dead("port_error", f"write failed: {e}") from None


def _fileno(port: serial.SerialBase) -> int | None:
    """The port's descriptor, or None for handlers that have none (io.UnsupportedOperation,
    or no fileno() at all)."""
    try:
        return int(port.fileno())
    except (AttributeError, NotImplementedError, OSError, ValueError):
        return None


def _device_of(url: str) -> str | None:
    """The device a path URL leads to right now (for the log), or None for network URLs."""
    if "://" in url:
        return None
    try:
        return os.path.realpath(url)
    except OSError:
        return None
