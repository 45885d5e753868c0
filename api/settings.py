"""Settings of ``pak api`` (flags, TOML ``[api]``, ``PAK_API_*``). Accounts live in the
database (``pak users``): authentication is always on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.security.credentials import DEFAULT_MEMORY_KIB, DEFAULT_TIME_COST
from pak.checks import existing_file, is_loopback, time_zone
from pak.errors import ConfigError
from pak.key_settings import SigningSettings
from pak.settings import BrokerSettings, setting
from pak.settings import check_brokers as _check_brokers
from pak.wire import DEFAULT_ROOT

__all__ = ["ApiSettings"]


def _check_port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a TCP port (0-65535)"


def _check_tile_url(v: str | None) -> str | None:
    if v is None or (v.startswith(("http://", "https://", "/")) and "{z}" in v):
        return None
    return "must be an http(s) URL or a path with {z}, {x} and {y}"


@dataclass(frozen=True, kw_only=True)
class ApiSettings(BrokerSettings, SigningSettings):
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
    session_hours: float = setting(12.0, metavar="HOURS",
                                   help="a console session ends this long after sign-in")
    secure_cookie: bool = setting(True, help="send the session cookie over HTTPS only "
                                  "(--no-secure-cookie: plain HTTP beyond localhost, trials)")
    argon2_time_cost: int = setting(DEFAULT_TIME_COST, metavar="N",
                                    help="argon2 passes per password hash")
    argon2_memory_kib: int = setting(DEFAULT_MEMORY_KIB, metavar="KIB",
                                     help="argon2 memory per password hash (at most two run "
                                     "at once)")
    trip_gap_s: float = setting(1800.0, metavar="SECONDS",
                                help="gap that splits a trail into trips")
    max_speed_kmh: float = setting(120.0, metavar="KMH",
                                   help="hops faster than this are flagged implausible")
    # the console's map and clock
    tile_url: str | None = setting(
        None, metavar="URL", check=_check_tile_url,
        help="base map tiles for the console, e.g. https://tiles.city.example/{z}/{x}/{y}.png "
             "(the city's own tile server); unset: the roads of --roads-geojson")
    roads_geojson: Path | None = setting(
        None, metavar="FILE", check=existing_file,
        help="streets as GeoJSON, drawn as the console's base map when there is no tile "
             "server (pak sim city --export-streets writes one)")
    timezone: str = setting("Asia/Shanghai", metavar="ZONE", check=time_zone,
                            help="the city's time zone: the console shows times in it")
    feed_heartbeat_s: float = setting(
        15.0, metavar="SECONDS", check=lambda v: None if 0.1 <= v <= 300 else
        "must be between 0.1 and 300 seconds",
        help="live feed: a heartbeat this often (keeps proxies open, rechecks the session)")
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
        if not self.secure_cookie and not is_loopback(self.host):
            raise ConfigError(f"setting secure_cookie: --no-secure-cookie refused with host "
                              f"{self.host!r}; session cookies travel over HTTPS only")
        if (self.https_cert is None) != (self.https_key is None):
            raise ConfigError("setting https_cert/https_key: give both or neither")
