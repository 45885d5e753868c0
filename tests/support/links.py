"""What the gateway link tests share: a sink recording what a link delivers, and a link (a
serial link or a station server, anything with ``run(stop)``) running on a thread for the
length of a ``with`` block, which must end when it is told to stop."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from pak.types import TagRead


class Runs(Protocol):
    def run(self, stop: threading.Event) -> object: ...


class Reads:
    """A sink that records what the link delivers."""

    def __init__(self) -> None:
        self.items: list[tuple[TagRead, str, datetime]] = []
        self.lock = threading.Lock()

    def __call__(self, read: TagRead, reader_id: str, received_at: datetime) -> None:
        with self.lock:
            self.items.append((read, reader_id, received_at))

    def tags(self) -> list[str]:
        with self.lock:
            return [r.tag_id for r, _, _ in self.items]

    def by_reader(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.lock:
            for r, rid, _ in self.items:
                out.setdefault(rid, []).append(r.tag_id)
        return out


@contextlib.contextmanager
def running(link: Runs) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(3)
        assert not thread.is_alive(), f"{type(link).__name__}.run did not return after stop"
