"""Settings of ``pak gateway``: every one a flag, a TOML key (``[gateway]`` table) and an
environment variable ``PAK_GATEWAY_<NAME>``; a flag beats the environment, which beats the file.

A bad value is refused at start with a :class:`~pak.errors.ConfigError` naming the setting
(``setting reader_tz (flag --reader-tz): unknown time zone 'Mars/Olympus'``): an unattended box
must fail loudly on the bench, not misbehave at the roadside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pak.checks import between as _between
from pak.checks import log_format as _check_format
from pak.checks import log_level as _check_level
from pak.checks import parses as _parses
from pak.checks import time_zone as _check_tz
from pak.checks import topic_root as _check_root
from pak.checks import valid_id as _check_id
from pak.edge_key import EdgeKeySettings
from pak.errors import ConfigError
from pak.key_settings import CentreKeySettings
from pak.settings import (
    BrokerSettings,
    MetricsSettings,
    check_host_port,
    describe,
    parse_host_port,
    setting,
)
from pak.wire import DEFAULT_ROOT

__all__ = ["GatewaySettings", "load_settings", "parse_host_port"]

SERVICE = "gateway"


# --- checks: each returns an error text or None ------------------------------------------------


def _check_driver(v: str) -> str | None:
    from gateway.drivers import DRIVER_NAMES

    return None if v in DRIVER_NAMES else f"unknown driver {v!r} (one of " \
        f"{', '.join(DRIVER_NAMES)})"


def _check_listen(v: str) -> str | None:
    if not v.startswith("tcp://"):
        return "must be tcp://HOST:PORT"
    return _parses(partial(parse_host_port, allow_zero=True))(v[len("tcp://"):])



@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings(BrokerSettings, MetricsSettings, EdgeKeySettings, CentreKeySettings):
    """Everything ``pak gateway`` can be told (the broker and metrics fields come from
    :class:`~pak.settings.BrokerSettings` and :class:`~pak.settings.MetricsSettings`).
    Cross-field rules live in ``__post_init__``."""

    gateway_id: str = setting(help="this gateway's id, unique in the city (one MQTT topic level)",
                              metavar="ID", check=_check_id)
    driver: str = setting(help="reader protocol: r2000, chafon, mr7901, em4100", metavar="NAME",
                          check=_check_driver)
    serial: str | None = setting(
        None, metavar="URL",
        help="the reader's serial line: any pyserial URL (/dev/ttyUSB0, /dev/serial/by-id/..., "
             "socket://HOST:PORT, rfc2217://HOST:PORT)")
    listen: str | None = setting(
        None, metavar="tcp://HOST:PORT", check=_check_listen,
        help="accept stations that dial in (MR7901) on this address instead of --serial")
    advertise: str | None = setting(
        None, metavar="HOST:PORT", check=check_host_port,
        help="address a dial-in station is told to connect to (register reply); default: the "
             "address it reached us on")
    allow_station: tuple[str, ...] = setting(
        default_factory=tuple, repeat=True, metavar="ID",
        help="a station device id allowed to dial in (repeat; none given: any station)")
    model: str | None = setting(None, metavar="M", help="reader model, when the driver needs it")
    baud: int | None = setting(None, metavar="N", check=_between(300, 4_000_000),
                               help="serial speed (default: the driver's)")
    link_watchdog: float = setting(10.0, metavar="SECONDS", check=_between(0.2, 3600),
                                   help="serial reader: no frame for this long means the line "
                                        "is dead: close, back off, reopen")
    link_ping_every: float = setting(5.0, metavar="SECONDS", check=_between(0.1, 3600),
                                     help="serial reader: longest silence before a cheap command "
                                          "checks it is alive (and restarts its inventory)")
    reader_id: str | None = setting(
        None, metavar="ID", check=_check_id,
        help="reader id in sightings (default: the gateway id for a serial reader, the station's "
             "device id for a dial-in station)")
    reader_tz: str = setting("UTC", metavar="ZONE", check=_check_tz,
                             help="IANA time zone of the reader's own clock")
    mqtt_keepalive: int = setting(30, metavar="SECONDS", check=_between(5, 3600),
                                  help="MQTT keep-alive")
    mqtt_reconnect_max: int = setting(5, metavar="SECONDS", check=_between(1, 3600),
                                      help="longest wait between reconnection attempts "
                                           "(doubling from 1 s; the centre's cap is 5 s)")
    topic_root: str = setting(DEFAULT_ROOT, metavar="ROOT", check=_check_root,
                              help="topic root of the wire contract")
    spool: Path = setting(Path("/var/lib/pak/gateway-spool"), metavar="DIR",
                          help="spool folder (sightings stay here until the centre's receipt)")
    spool_max_mb: float = setting(512.0, metavar="MB", check=_between(1, 1_000_000),
                                  help="spool size limit; when full the oldest closed sightings "
                                       "are dropped (and counted)")
    exit_after: float | None = setting(
        None, metavar="SECONDS", check=_between(0.05, 86400),
        help="close a sighting after this long without a read (default: the driver's)")
    max_duration: float = setting(300.0, metavar="SECONDS", check=_between(1, 7 * 86400),
                                  help="longest sighting; a tag still read after it starts a "
                                       "new one")
    health_every: float = setting(60.0, metavar="SECONDS", check=_between(0.1, 86400),
                                  help="health message period")
    republish_after: float = setting(30.0, metavar="SECONDS", check=_between(0.1, 86400),
                                     help="first wait for the centre's receipt before a "
                                          "sighting is republished (doubles each try)")
    republish_max: float = setting(600.0, metavar="SECONDS", check=_between(0.1, 86400),
                                   help="longest wait between republications")
    max_inflight: int = setting(1000, metavar="N", check=_between(1, 20000),
                                help="sightings messages published and not yet acknowledged "
                                     "by the broker (paho refuses past 65535)")
    batch_max: int = setting(200, metavar="N", check=_between(1, 1000),
                             help="most sightings per message when draining the spool")
    max_open: int = setting(50_000, metavar="N", check=_between(1, 10_000_000),
                            help="most sightings open at once (memory bound); past it the "
                                 "stalest is closed early and counted")
    log_level: str = setting("info", metavar="LEVEL", check=_check_level,
                             help="debug, info, warning or error")
    log_format: str = setting("text", metavar="FORMAT", check=_check_format,
                              help="text (for people) or json (for log shippers)")

    def __post_init__(self) -> None:
        if (self.serial is None) == (self.listen is None):
            raise ConfigError("setting serial/listen: give exactly one of --serial URL "
                              "(a reader on a serial line) and --listen tcp://HOST:PORT "
                              "(stations that dial in)")
        transport = self.driver_transport()
        if self.serial is not None and transport != "serial":
            raise ConfigError(f"setting driver: {self.driver} readers dial in: use --listen "
                              "tcp://HOST:PORT, not --serial")
        if self.listen is not None and transport != "tcp-server":
            raise ConfigError(f"setting driver: {self.driver} readers are on a serial line: use "
                              "--serial, not --listen")
        if self.serial is not None and (self.advertise or self.allow_station):
            raise ConfigError("setting advertise/allow_station: only with --listen")
        for sid in self.allow_station:
            if not sid or len(sid) > 16:
                raise ConfigError(f"setting allow_station: {sid!r} is not a station device id "
                                  "(1-16 characters)")
        self.broker()  # the broker fields' own rules (no zero-argument super() with slots)
        if self.model is not None:
            try:
                self.driver_class()(self.model)
            except ValueError as e:
                raise ConfigError(f"setting model: {e}") from None
        if self.exit_after_s >= self.max_duration:
            raise ConfigError(f"setting exit_after: {self.exit_after_s:g} s must be shorter than "
                              f"max_duration ({self.max_duration:g} s)")
        if self.link_ping_every > self.link_watchdog:
            raise ConfigError("setting link_ping_every: must not be longer than link_watchdog")
        if self.republish_max < self.republish_after:
            raise ConfigError("setting republish_max: must not be shorter than republish_after")

    # --- derived values ------------------------------------------------------------------

    def driver_class(self) -> Any:
        from gateway.drivers import driver_class

        try:
            return driver_class(self.driver)
        except ModuleNotFoundError as e:
            raise ConfigError(f"setting driver: the {self.driver} driver is not installed "
                              f"({e.name})") from None

    def driver_transport(self) -> str:
        return str(self.driver_class().transport)

    @property
    def exit_after_s(self) -> float:
        if self.exit_after is not None:
            return self.exit_after
        return float(self.driver_class().default_exit_after)

    @property
    def baud_rate(self) -> int:
        return self.baud if self.baud is not None else int(self.driver_class().default_baud)

    @property
    def default_reader_id(self) -> str | None:
        """The reader id for reads of a serial reader (dial-in: None, the station's own id)."""
        if self.reader_id is not None:
            return self.reader_id
        return self.gateway_id if self.serial is not None else None

    @property
    def listen_address(self) -> tuple[str, int] | None:
        return None if self.listen is None else parse_host_port(self.listen[len("tcp://"):],
                                                                allow_zero=True)

    @property
    def spool_max_bytes(self) -> int:
        return int(self.spool_max_mb * 1024 * 1024)

    def describe(self) -> dict[str, Any]:
        """The settings for the start-up log line: no password appears."""
        return {**describe(self), "exit_after": self.exit_after_s}


EPILOG = """\
examples:
  # a UHF reader on a USB serial adapter, followed across re-plugging by its by-id path
  PAK_GATEWAY_MQTT_PASSWORD=secret pak gateway --gateway-id gw-0412 --driver r2000 \\
      --serial /dev/serial/by-id/usb-FTDI_FT232R_A10K3ZQ-if00-port0 \\
      --mqtt mqtt://gw-0412@broker.city.example:1883 --spool /var/lib/pak/spool

  # MR7901 stations dialling in over 4G; only two known stations are accepted
  pak gateway --gateway-id gw-0007 --driver mr7901 --listen tcp://0.0.0.0:4900 \\
      --advertise 203.0.113.7:4900 --allow-station 79010001 --allow-station 79010002 \\
      --reader-tz Asia/Shanghai --mqtt mqtts://broker.city.example:8883 --mqtt-ca ca.pem

  # a reader behind a serial device server, settings from a file, broker from the environment
  PAK_GATEWAY_MQTT=mqtt://10.0.0.5:1883 pak gateway --config /etc/pak/gateway.toml

Every flag is also a key of the [gateway] table of --config FILE and an environment variable
PAK_GATEWAY_<NAME> (e.g. PAK_GATEWAY_SPOOL_MAX_MB=256); a flag beats the environment, which
beats the file. Sightings stay in the spool until the centre's receipt covers them.
"""


def load_settings(argv: Sequence[str] | None, *,
                  env: dict[str, str] | None = None) -> GatewaySettings:
    """Parse ``pak gateway`` arguments (ConfigError naming the setting when refused)."""
    from pak.settings import load

    settings, _ = load(GatewaySettings, SERVICE, argv, prog="pak gateway",
                       description="Edge gateway: reader link -> sightings -> spool -> MQTT "
                                   "(kept until the centre's receipt).",
                       epilog=EPILOG, env=env)
    return settings
