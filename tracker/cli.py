"""``pak tracker``: the central tracker service (see tracker/service.py and ``--help``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from types import FrameType

from pak.logs import setup_logging
from pak.sdnotify import WatchedStop
from tracker.config import load_settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pak tracker`` (pak/cli.py turns ConfigError into exit status 2).
    Runs until SIGTERM or SIGINT, then stops gracefully: pending batches are committed and
    acked before the process exits."""
    settings = load_settings(argv)
    setup_logging(settings.log_level, settings.log_format)

    from tracker.service import TrackerService

    # systemd (Type=notify): READY once started; WATCHDOG while the ingest writer thread lives
    stop = WatchedStop(alive=lambda: any(t.name == "pak-ingest-writer"
                                         for t in threading.enumerate()))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return TrackerService(settings).run(stop)
