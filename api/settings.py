"""Settings of ``pak api`` (flags, TOML ``[api]``, ``PAK_API_*``). Refuses insecure set-ups:
no listening beyond loopback without API tokens."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pak.checks import existing_file
from pak.errors import ConfigError
from pak.settings import BrokerSettings, setting
from pak.settings import check_brokers as _check_brokers
from pak.wire import DEFAULT_ROOT

__all__ = ["ApiSettings"]


def _check_port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a TCP port (0-65535)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, kw_only=True)
class ApiSettings(BrokerSettings):
    """Everything ``pak api`` can be told (the broker fields, with TLS and credentials, come
    from :class:`~pak.settings.BrokerSettings`; here the broker is off unless given)."""

    mqtt: str | None = setting(
        None, metavar="URL[,URL...]", check=_check_brokers, broker_urls=True,
        help="broker for live alerts and watchlist announcements: mqtt://host:port or "
             "mqtts://host:port; several, comma-separated, are tried in turn")
    db: str = setting(help="storage URL: postgresql://... or sqlite:///path", metavar="URL")
    topic_root: str = setting(DEFAULT_ROOT, metavar="ROOT", help="topic root of the wire contract")
    host: str = setting("127.0.0.1", help="address to listen on")
    port: int = setting(8080, check=_check_port, help="TCP port to listen on")
    tokens_file: Path | None = setting(
        None, metavar="FILE",
        help="API tokens, one per line: TOKEN USER [ROLE] (roles: officer, analyst, admin)")
    auth: bool = setting(True, help="require API tokens; --no-auth lets every request act as "
                         "'local' and is accepted on loopback only (trials, the demo)")
    trip_gap_s: float = setting(1800.0, metavar="SECONDS",
                                help="gap that splits a trail into trips")
    max_speed_kmh: float = setting(120.0, metavar="KMH",
                                   help="hops faster than this are flagged implausible")
    log_level: str = setting("info", help="debug, info, warning or error")
    log_format: str = setting("text", help="text or json")
    # HTTPS served by uvicorn itself (leave both unset behind a TLS reverse proxy)
    https_cert: Path | None = setting(None, metavar="FILE", check=existing_file,
                                      help="serve HTTPS with this certificate chain (PEM)")
    https_key: Path | None = setting(None, metavar="FILE", check=existing_file,
                                     help="private key of --https-cert (PEM)")
    trusted_proxies: str = setting(
        "127.0.0.1", metavar="ADDRS",
        help="comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto "
             "headers uvicorn believes (client address, https scheme); * trusts all")

    def __post_init__(self) -> None:
        if self.mqtt is not None:
            self.broker()
        if self.tokens_file is None and self.auth:
            raise ConfigError("setting tokens_file: required (or --no-auth on loopback for "
                              "trials): the API serves police data")
        if not self.auth and not _is_loopback(self.host):
            raise ConfigError(f"setting auth: --no-auth refused with host {self.host!r}; "
                              "without tokens the API listens on loopback only")
        if self.tokens_file is not None and not self.tokens_file.is_file():
            raise ConfigError(f"setting tokens_file: {self.tokens_file} is not a readable file")
        if (self.https_cert is None) != (self.https_key is None):
            raise ConfigError("setting https_cert/https_key: give both or neither")
