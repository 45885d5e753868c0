"""The embedded MQTT broker of ``pak demo``: amqtt, pure Python, MQTT 3.1.1, no install.

For the demo and small trials only. It runs at a fraction of Mosquitto's rate and knows no
shared subscriptions; production and load tests use Mosquitto (deploy/mosquitto/).
Run as ``python -m pak.embedded_broker --port 1884``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

__all__ = ["main", "serve"]


async def serve(host: str, port: int, stop: asyncio.Event) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {
            "allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pak.embedded_broker",
                                description="embedded MQTT 3.1.1 broker for the demo")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1884)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
