"""A broker address, ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``, parsed once for
every component (gateway, tracker, API, simulators); :class:`Brokers` is the list a client
fails over between, with its credentials and TLS files. Standard library only: an edge box
parses its settings without paho."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from pak.errors import ConfigError

__all__ = ["BrokerUrl", "Brokers", "TlsFiles"]


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


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What verifies the broker and (optionally) identifies us to it. ``ca`` None: the
    system's trust store; ``cert``/``key`` None: no client certificate."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Brokers:
    """The brokers one client may use, in order of preference (the client moves to the next
    when a connection attempt fails), with the credentials and TLS files they share.

    Invariant: every URL has the same scheme (TLS is a property of the client, not of one
    attempt), and the password given outside the URL has already replaced any inside it."""

    urls: tuple[BrokerUrl, ...]
    tls: TlsFiles = TlsFiles()
    #: True when the password came from a URL (works, but ``ps`` shows it: warned at start).
    password_in_url: bool = False

    def __post_init__(self) -> None:
        if not self.urls:
            raise ConfigError("setting mqtt: no broker URL")
        if len({u.tls for u in self.urls}) > 1:
            raise ConfigError("setting mqtt: mix of mqtt:// and mqtts:// URLs; use one scheme")

    @classmethod
    def parse(cls, text: str, *, username: str | None = None, password: str | None = None,
              tls: TlsFiles = TlsFiles()) -> Brokers:
        """``text`` is one URL or several separated by commas. ``username``/``password``
        (from their own settings, the environment or a file) override what a URL says."""
        urls = [BrokerUrl.parse(u.strip()) for u in text.split(",") if u.strip()]
        in_url = password is None and any(u.password for u in urls)
        out = []
        for u in urls:
            user = username if username is not None else u.username
            pw = password if password is not None else u.password
            if pw is not None and user is None:
                raise ConfigError("setting mqtt_password: a password needs a user (--mqtt-username "
                                  "or user@ in the --mqtt URL)")
            out.append(BrokerUrl(u.host, u.port, u.tls, user, pw))
        return cls(tuple(out), tls, in_url)

    @property
    def tls_on(self) -> bool:
        return self.urls[0].tls

    def redacted(self) -> str:
        """The URLs for log lines: no password appears."""
        return ",".join(u.redacted() for u in self.urls)
