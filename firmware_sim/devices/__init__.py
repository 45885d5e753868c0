"""Device sides of the reader protocols, one module per driver (``DEVICE`` in each)."""

from __future__ import annotations

import importlib

from firmware_sim.devices.base import SimDevice, SimTag

__all__ = ["SimDevice", "SimTag", "device_class"]

_REGISTRY = {
    "r2000": "firmware_sim.devices.r2000",
    "chafon": "firmware_sim.devices.chafon",
    "mr7901": "firmware_sim.devices.mr7901",
    "em4100": "firmware_sim.devices.em4100",
}


def device_class(name: str) -> type[SimDevice]:
    try:
        module = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"no simulated device for driver {name!r}") from None
    cls: type[SimDevice] = importlib.import_module(module).DEVICE
    return cls
