"""Reader drivers, registered by name. Each is a package: frames.py, framer.py, protocol.py.

Drivers are pure (see :mod:`gateway.drivers.base`) and import nothing of the runtime.
"""

from __future__ import annotations

import importlib

from gateway.drivers.base import Driver, Frame, Framer, Rejected, StreamDecoder

__all__ = ["DRIVER_NAMES", "Driver", "Frame", "Framer", "Rejected", "StreamDecoder",
           "driver_class", "make_driver"]

# name -> module holding the Driver subclass as ``DRIVER``
_REGISTRY = {
    "r2000": "gateway.drivers.r2000.protocol",
    "chafon": "gateway.drivers.chafon.protocol",
    "mr7901": "gateway.drivers.mr7901.protocol",
    "em4100": "gateway.drivers.em4100.protocol",
}
DRIVER_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def driver_class(name: str) -> type[Driver]:
    try:
        module = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown driver {name!r} (one of {', '.join(DRIVER_NAMES)})") from None
    cls: type[Driver] = importlib.import_module(module).DRIVER
    return cls


def make_driver(name: str, model: str | None = None) -> Driver:
    """A new driver instance (one per link)."""
    return driver_class(name)(model)
