"""A broker address, ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``, parsed once for
every component (gateway, tracker, API, simulators)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from pak.errors import ConfigError

__all__ = ["BrokerUrl"]


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Parse a broker URL; :class:`ConfigError` names what is wrong with it."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(f"broker URL {url!r}: the scheme must be mqtt:// or mqtts://")
        try:
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"broker URL {url!r}: {e}") from None
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"broker URL {url!r}: expected mqtt[s]://[user:pass@]host[:port]")
        tls = parts.scheme == "mqtts"
        unquote = urllib.parse.unquote
        return cls(
            host=parts.hostname,
            port=port if port is not None else (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def redacted(self) -> str:
        """The URL for log lines: the password never appears."""
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"
