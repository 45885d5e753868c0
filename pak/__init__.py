"""pak: the shared core of the gateway and tracking service.

This package holds what every component agrees on: the wire contract (topics, payloads and
their JSON Schemas), the TagRead and Sighting types, time formatting, settings and logging
helpers. It imports none of the components (gateway, ingest, tracker, api, firmware_sim); the
thin command in :mod:`pak.cli` imports them lazily, inside the subcommand that needs them.
"""

from pak.errors import PakError

__all__ = ["PakError", "__version__"]

__version__ = "0.1.0"
