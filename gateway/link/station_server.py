"""A TCP server for reader stations that dial in (the MR7901 base station).

The station is the TCP client: it registers (0x0008), is told which address to log in to
(the 0x8008 reply carries the gateway's advertised address), logs in (0x0001), then sends
heartbeats (0x0003) and data reports (0x0004). Every message must be answered or the station
resends it and, after a few tries, starts its session over. The station's driver knows the
session protocol; this server owns the sockets:

    accept --> one driver + one StreamDecoder per connection
    bytes  --> frames --> allowed station?  no: close the connection (logged once per id)
                                            yes: reads -> sink(read, reader_id, received_at)
                                                 then driver.replies(frame, now) -> sent back
    no byte for idle_timeout_s --> connection closed (the station dials again)

Reads go to the sink before the acknowledgement is sent: a station forgets a report once it is
answered, so it must not be answered before the gateway holds its reads.

One thread, one ``selectors`` loop: a gateway serves a handful of stations, each sending a few
messages a minute; no connection can stall another (sends are non-blocking, with a bounded
output buffer per connection).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gateway.drivers.base import Driver, Frame, Rejected, StreamDecoder
from gateway.link import ReadSink, deliver
from gateway.link.stats import DecodeTotals, ErrorsOnce, link_status
from pak.errors import ConfigError
from pak.logs import event
from pak.timefmt import utcnow

__all__ = ["ServerState", "StationServer", "frame_device_id"]

log = logging.getLogger(__name__)

ServerState = Literal["listening", "down"]

_TICK_S = 0.1
_RECV_CHUNK = 65536
#: A station that stops reading its acknowledgements while we owe it more: cut it off rather
#: than buffer without bound.
_MAX_OUTBOX = 64 * 1024
#: How many refused or unknown device ids are remembered (for logging each once).
_MAX_REMEMBERED_IDS = 1024


def frame_device_id(driver: Driver, frame: Frame) -> str | None:
    """The device id a station's message carries (the MR7901 header's 16-byte id), if any:
    the driver's ``device_id(frame)`` when it has one, else the frame's ``device_id``."""
    method = getattr(driver, "device_id", None)
    dev = method(frame) if callable(method) else getattr(frame, "device_id", None)
    return dev if isinstance(dev, str) and dev else None


def _driver_extra(driver: Driver, name: str, *args: Any) -> list[Any]:
    """Call an optional driver hook (``rejections``, ``refusal``) that is not part of the base
    contract; [] when the driver has none."""
    method = getattr(driver, name, None)
    return list(method(*args)) if callable(method) else []


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    peer: str
    driver: Driver
    decoder: StreamDecoder
    last_rx: float
    device_id: str | None = None
    outbox: bytearray = field(default_factory=bytearray)
    messages: int = 0


class StationServer:
    """Listens for stations; ``run(stop)`` serves them until ``stop`` is set.

    The socket is bound in the constructor, so a port already in use is refused at start and
    :attr:`bound_port` is known before ``run`` (listen on port 0 in tests).
    """

    def __init__(
        self,
        listen: tuple[str, int],
        driver_factory: Callable[[], Driver],
        *,
        sink: ReadSink,
        advertise: tuple[str, int] | None = None,
        allow: Collection[str] | None = None,
        reader_id: str | None = None,
        idle_timeout_s: float = 180.0,
        clock: Callable[[], datetime] = utcnow,
        max_connections: int = 64,
    ) -> None:
        if not idle_timeout_s > 0:
            raise ConfigError(f"station idle timeout must be > 0 s (got {idle_timeout_s})")
        self._driver_factory = driver_factory
        self._sink = sink
        self._allow = frozenset(allow) if allow is not None else None
        self.reader_id = reader_id
        self._idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._max_connections = max_connections
        host, port = listen
        try:
            self._listener = socket.create_server((host, port), backlog=16, reuse_port=False)
        except OSError as e:
            raise ConfigError(f"listen tcp://{host}:{port}: {e}") from None
        self._listener.setblocking(False)
        self._host = host
        self._port = int(self._listener.getsockname()[1])
        self.advertise = advertise
        self.url = f"tcp://{host}:{self._port}"

        self._state: tuple[ServerState, datetime] = ("down", clock())
        self._totals = DecodeTotals()
        self._conns: dict[int, _Conn] = {}
        # (stations, open connections): replaced whole, so status() sees one consistent pair.
        self._view: tuple[tuple[str, ...], int] = ((), 0)
        self._seen_ids: set[str] = set()
        self._refused_ids: set[str] = set()
        self._accepted = 0
        self._reconnects = 0
        self._refused = 0
        self._idle_closed = 0
        self._reads = 0
        self._echoes = 0
        self._sink_errors = 0
        self._driver_errors = 0
        self._errors_logged = ErrorsOnce(log, "station")
        self._closed = False

    @property
    def bound_port(self) -> int:
        return self._port

    # -- public ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Serve stations until ``stop`` is set; closes every connection and the listener."""
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        self._state = ("listening", self._clock())
        event(log, logging.INFO, "station_server_listening", url=self.url,
              advertise=self._advertise_text(),
              allow=sorted(self._allow) if self._allow is not None else None)
        try:
            while not stop.is_set():
                for key, mask in sel.select(_TICK_S):
                    if key.data is None:
                        self._accept(sel)
                        continue
                    conn: _Conn = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._flush(sel, conn)
                    if mask & selectors.EVENT_READ and conn.sock.fileno() in self._conns:
                        self._receive(sel, conn)
                self._close_idle(sel)
        finally:
            for conn in list(self._conns.values()):
                self._close(sel, conn, "stopping", logging.DEBUG)
            sel.close()
            self.close()
            self._state = ("down", self._clock())

    def close(self) -> None:
        """Release the listening socket (``run`` does this when it ends)."""
        if not self._closed:
            self._closed = True
            self._listener.close()

    def status(self) -> dict[str, Any]:
        state, since = self._state
        stations, connections = self._view
        return link_status(
            state=state, since=since, url=self.url, reconnects=self._reconnects,
            reads=self._reads, echoes=self._echoes, totals=self._totals,
            extra={
                "stations": list(stations),
                "connections": connections,
                "accepted": self._accepted,
                "refused": self._refused,
                "idle_closed": self._idle_closed,
                "advertise": self._advertise_text(),
            },
            sink_errors=self._sink_errors, driver_errors=self._driver_errors,
        )

    # -- connections ------------------------------------------------------------------------

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            sock, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # e.g. EMFILE: keep serving the connections we have
            self._error_once("accept", e)
            return
        peer = f"{addr[0]}:{addr[1]}"
        if len(self._conns) >= self._max_connections:
            self._refused += 1
            event(log, logging.WARNING, "station_refused", peer=peer, reason="too_many",
                  limit=self._max_connections)
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A GPRS station that vanishes leaves a half-open connection: let the kernel notice.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            driver = self._driver_factory()
        except Exception as e:
            self._driver_errors += 1
            self._error_once("driver", e)
            sock.close()
            return
        self._set_advertise(driver, sock)
        decoder = driver.decoder()
        conn = _Conn(sock, peer, driver, decoder, time.monotonic())
        self._totals.attach(decoder)
        self._conns[sock.fileno()] = conn
        self._accepted += 1
        self._update_view()
        sel.register(sock, selectors.EVENT_READ, conn)
        event(log, logging.DEBUG, "station_accepted", peer=peer)

    def _receive(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._close(sel, conn, f"error: {e}", logging.INFO)
            return
        if not data:
            self._close(sel, conn, "closed by station", logging.INFO)
            return
        conn.last_rx = time.monotonic()
        received_at = self._clock()
        for item in self._totals.feed(conn.decoder, data):
            if isinstance(item, Rejected):
                continue
            if not self._on_frame(sel, conn, item, received_at):
                return  # connection closed

    def _on_frame(self, sel: selectors.BaseSelector, conn: _Conn, frame: Frame,
                  received_at: datetime) -> bool:
        """Handle one message; False when the connection was closed."""
        driver = conn.driver
        try:
            if driver.is_echo(frame):
                self._echoes += 1
                return True
        except Exception as e:
            self._driver_errors += 1
            self._error_once("driver", e)
            return True
        device_id = frame_device_id(driver, frame)
        if not self._identify(sel, conn, frame, device_id, received_at):
            return False
        reader_id = self.reader_id or device_id or conn.device_id
        conn.messages += 1
        try:
            reads = driver.reads(frame)
            # Damage inside an intact message (a tag record with a bad check byte): counted
            # with the framer's rejections.
            self._totals.count(conn.decoder, _driver_extra(driver, "rejections", frame))
            out = driver.replies(frame, received_at)
        except Exception as e:
            self._driver_errors += 1
            self._error_once("driver", e)
            return True
        if reads and reader_id is None:
            # Cannot happen with the MR7901 (every message names its station); a read without
            # a reader id would be a read nobody can place, so it is not delivered.
            self._driver_errors += 1
            self._error_once("driver", ValueError("reads from a message without a device id"))
            reads = []
        self._reads += len(reads)
        self._sink_errors += deliver(self._sink, reads, reader_id or "", received_at,
                                     self._error_once)
        if out:
            return self._send(sel, conn, b"".join(out))
        return True

    def _identify(self, sel: selectors.BaseSelector, conn: _Conn, frame: Frame,
                  device_id: str | None, now: datetime) -> bool:
        """Check a message's device id against the allowlist; name the connection after it."""
        if self._allow is not None and device_id not in self._allow:
            self._refused += 1
            shown = device_id if device_id is not None else "(none)"
            first = shown not in self._refused_ids
            if first and len(self._refused_ids) < _MAX_REMEMBERED_IDS:
                self._refused_ids.add(shown)
            event(log, logging.WARNING if first else logging.DEBUG, "station_refused",
                  peer=conn.peer, device_id=shown, reason="not_allowed")
            # Say no in the protocol first where it has a word for it (a refused login makes
            # the station wait minutes instead of redialling at once), then hang up.
            try:
                refusal = b"".join(_driver_extra(conn.driver, "refusal", frame, now))
            except Exception as e:
                self._error_once("driver", e)
                refusal = b""
            if refusal:
                with contextlib.suppress(OSError):
                    conn.sock.send(refusal)
            self._close(sel, conn, "refused", logging.DEBUG)
            return False
        if device_id is None or device_id == conn.device_id:
            return True
        if conn.device_id is not None:
            # One connection, one station: a different id mid-session is a confused peer.
            event(log, logging.WARNING, "station_id_changed", peer=conn.peer,
                  was=conn.device_id, now=device_id)
        conn.device_id = device_id
        # The station keeps one session: an older connection under the same id is a stale
        # half-open one (GPRS dropped without a FIN); the newest wins.
        for other in list(self._conns.values()):
            if other is not conn and other.device_id == device_id:
                self._close(sel, other, "replaced by a new connection", logging.DEBUG)
        again = device_id in self._seen_ids
        if again:
            self._reconnects += 1
        elif len(self._seen_ids) < _MAX_REMEMBERED_IDS:
            self._seen_ids.add(device_id)
        self._update_view()
        event(log, logging.INFO, "station_connected", device_id=device_id, peer=conn.peer,
              reconnect=again)
        return True

    def _send(self, sel: selectors.BaseSelector, conn: _Conn, data: bytes) -> bool:
        if not conn.outbox:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as e:
                self._close(sel, conn, f"error: {e}", logging.INFO)
                return False
            data = data[sent:]
            if not data:
                return True
        conn.outbox += data
        if len(conn.outbox) > _MAX_OUTBOX:
            self._close(sel, conn, "not reading its replies", logging.WARNING)
            return False
        sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        return True

    def _flush(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._close(sel, conn, f"error: {e}", logging.INFO)
            return
        del conn.outbox[:sent]
        if not conn.outbox:
            sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _close_idle(self, sel: selectors.BaseSelector) -> None:
        limit = time.monotonic() - self._idle_timeout_s
        for conn in list(self._conns.values()):
            if conn.last_rx < limit:
                self._idle_closed += 1
                self._close(sel, conn, f"idle for {self._idle_timeout_s:g} s", logging.INFO)

    def _close(self, sel: selectors.BaseSelector, conn: _Conn, why: str, level: int) -> None:
        fd = conn.sock.fileno()
        if self._conns.get(fd) is not conn:
            return
        del self._conns[fd]
        self._update_view()
        if conn.device_id is not None:
            level = max(level, logging.INFO)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        self._totals.detach(conn.decoder)
        event(log, level, "station_disconnected", device_id=conn.device_id, peer=conn.peer,
              reason=why, messages=conn.messages)

    def _set_advertise(self, driver: Driver, sock: socket.socket) -> None:
        """Tell a driver that redirects stations (MR7901's 0x8008) where to send them: the
        configured address, or else the address this station reached us at (right even when
        listening on 0.0.0.0; behind NAT, configure ``advertise``)."""
        if not hasattr(driver, "advertise") or driver.advertise is not None:
            return
        if self.advertise is not None:
            driver.advertise = self.advertise
            return
        host, port = sock.getsockname()[:2]
        if host.startswith("::ffff:"):
            host = host[len("::ffff:"):]  # an IPv4 station on a dual-stack socket
        if len(host.encode()) <= 31:  # the 0x8008 IP field: 32 bytes, NUL-terminated
            driver.advertise = (host, int(port))

    def _advertise_text(self) -> str:
        if self.advertise is None:
            return "(the address each station connected to)"
        return f"{self.advertise[0]}:{self.advertise[1]}"

    def _update_view(self) -> None:
        conns = list(self._conns.values())
        stations = tuple(sorted({c.device_id for c in conns if c.device_id is not None}))
        self._view = (stations, len(conns))

    def _error_once(self, kind: str, exc: BaseException) -> None:
        self._errors_logged.log(kind, exc, url=self.url)
