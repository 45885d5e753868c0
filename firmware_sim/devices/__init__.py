"""Device sides of the reader protocols, one module per driver (``DEVICE`` in each).

The drivers' registry (:data:`gateway.drivers.DRIVER_NAMES`) is the one list of names: every
driver has a device module here named like it.
"""

from __future__ import annotations

import importlib

from firmware_sim.devices.base import SimDevice, SimTag
from gateway.drivers import DRIVER_NAMES

__all__ = ["SimDevice", "SimTag", "device_class"]


def device_class(name: str) -> type[SimDevice]:
    if name not in DRIVER_NAMES:
        raise ValueError(f"no simulated device for driver {name!r}")
    cls: type[SimDevice] = importlib.import_module(f"firmware_sim.devices.{name}").DEVICE
    return cls
