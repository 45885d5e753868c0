"""systemd's notification protocol (``sd_notify``), standard library only.

A service started by a unit with ``Type=notify`` tells systemd when it is ready and, with
``WatchdogSec=``, proves every so often that it is still alive; systemd restarts it when the
proof stops coming. The protocol is one datagram per message, ``KEY=VALUE`` lines, sent to the
unix socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace).

Invariants:

* Without ``$NOTIFY_SOCKET`` (run by hand, in tests, under another supervisor) every call is a
  no-op that returns False: nothing here can stop a service from running.
* A failed send is logged once and never raises: systemd going away must not take the service
  with it.
* The watchdog is on only when ``$WATCHDOG_USEC`` is set and ``$WATCHDOG_PID`` (when present)
  names this process; :meth:`Notifier.beat` sends at most one ``WATCHDOG=1`` per quarter of the
  interval, so a loop may call it on every iteration.
* Pings come from the loop whose progress they prove. :class:`WatchedStop` is the stop event a
  service's main loop already polls: polling it on the main thread is the proof, so a wedged loop
  stops the pings; no helper thread pings on the loop's behalf.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "WatchedStop", "ready", "status", "stopping", "watchdog"]

log = logging.getLogger("pak.sdnotify")


class Notifier:
    """Messages to systemd's notification socket, read from ``env`` (default ``os.environ``)."""

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if raw.startswith("@"):
            self.address = "\0" + raw[1:]  # abstract namespace
        elif raw.startswith("/"):
            self.address = raw
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000
        self._clock = clock
        self._last_beat: float | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True when it was sent."""
        if self.address is None:
            return False
        data = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(data, self.address)
        except OSError as e:
            if not self._failed:  # once: a vanished socket would otherwise log every beat
                self._failed = True
                log.warning("sd_notify to %r failed: %s", self.address.replace("\0", "@"), e)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is over (``Type=notify`` units stay "activating" until this)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """One watchdog keep-alive, now."""
        if self.watchdog_interval is None:
            return False
        with self._lock:
            self._last_beat = self._clock()
        return self.notify("WATCHDOG=1")

    def beat(self) -> bool:
        """A keep-alive if a quarter of the watchdog interval has passed since the last one
        (cheap enough to call on every iteration of a loop); True when one was sent."""
        if self.watchdog_interval is None or self.address is None:
            return False
        now = self._clock()
        with self._lock:
            if self._last_beat is not None and now - self._last_beat < self.watchdog_interval / 4:
                return False
            self._last_beat = now
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self.notify("STATUS=" + text.replace("\n", " "))

    def stopping(self) -> bool:
        """The service has begun to stop."""
        return self.notify("STOPPING=1")


_default: Notifier | None = None
_default_lock = threading.Lock()


def _notifier() -> Notifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = Notifier()
        return _default


def ready(status: str | None = None) -> bool:
    return _notifier().ready(status)


def watchdog() -> bool:
    return _notifier().watchdog()


def status(text: str) -> bool:
    return _notifier().status(text)


def stopping() -> bool:
    return _notifier().stopping()


class WatchedStop(threading.Event):
    """The stop event of a service's main loop, reporting to systemd as the loop uses it.

    * ``is_set()`` on the main thread: the first call means start-up is over (READY=1); every
      call is a :meth:`Notifier.beat`. A loop that polls its stop event on each iteration
      (the gateway's core loop) thereby feeds the watchdog only while it turns.
    * ``wait()`` without a timeout on the main thread (a service whose work runs in its own
      threads and whose main thread only waits for the signal: the tracker): READY=1, then the
      wait is cut into slices and each slice beats only when ``alive()`` says the service's
      workers are running.
    * ``set()`` (the signal handler): STOPPING=1.

    Calls from other threads behave like a plain :class:`threading.Event`.
    """

    def __init__(self, notifier: Notifier | None = None, *,
                 alive: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.notifier = notifier if notifier is not None else _notifier()
        self._alive = alive
        self._ready_sent = False

    def _on_main(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def _ready(self) -> None:
        if not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready()

    def is_set(self) -> bool:
        if self._on_main():
            self._ready()
            self.notifier.beat()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None or not self._on_main():
            return super().wait(timeout)
        self._ready()
        interval = self.notifier.watchdog_interval
        if interval is None:
            return super().wait()
        while not super().wait(interval / 4):
            if self._alive is None or self._alive():
                self.notifier.watchdog()
        return True

    def set(self) -> None:
        if not super().is_set():
            self.notifier.stopping()
        super().set()
