"""``pak gateway``: run one edge gateway until SIGTERM or SIGINT (then stop gracefully: open
sightings are closed into the spool, the broker is told ``offline``)."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from types import FrameType

from gateway.config import load_settings
from pak.logs import setup_logging
from pak.sdnotify import WatchedStop

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pak gateway`` (pak/cli.py turns ConfigError into exit status 2)."""
    settings = load_settings(argv)
    setup_logging(settings.log_level, settings.log_format)

    from gateway.runtime import Gateway

    # systemd (Type=notify): READY at the core loop's first turn, WATCHDOG from each turn
    stop = WatchedStop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return Gateway(settings).run(stop)
