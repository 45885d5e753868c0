"""Layered settings for every pak command: defaults < TOML file < environment < flags.

A service declares one frozen dataclass whose fields carry :func:`setting` metadata (help text,
flag name, validation). :func:`load` builds the argparse parser from it, reads ``--config
FILE`` (a TOML table per service, e.g. ``[gateway]``, or the top level), the environment
(``PAK_<SERVICE>_<NAME>``), then the flags, converts and validates every value, and refuses a
bad one with a :class:`~pak.errors.ConfigError` that names the setting and where it came from.

Two mixins give shared fields one name everywhere: :class:`BrokerSettings` (``--mqtt`` and
its credentials, TLS files and protocol; gateway, tracker, API, and the watchlist CLI through
:func:`add_broker_flags`) and :class:`MetricsSettings` (``--metrics-listen HOST:PORT``).

It needs nothing outside the standard library, so an edge box's install stays small.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pak.broker_url import Brokers, TlsFiles
from pak.checks import parses
from pak.errors import ConfigError

__all__ = ["BrokerSettings", "MetricsSettings", "add_broker_flags", "broker_from_flags",
           "build_parser", "check_brokers", "check_host_port", "describe", "load",
           "parse_host_port", "setting"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    check: Callable[[Any], str | None] | None = None,
    repeat: bool = False,
    secret: bool = False,
    broker_urls: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field. ``check(value)`` returns an error text or None; ``repeat`` makes a
    list flag that may be given several times (``--allow-station A --allow-station B``); in the
    environment a list is comma-separated. ``secret`` values are masked in :func:`describe`;
    so are the passwords of ``broker_urls`` (a comma-separated list of broker URLs)."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "check": check, "repeat": repeat,
            "secret": secret, "broker_urls": broker_urls}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flag(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """The scalar type of a field annotation and whether None is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else str), optional
    return tp, False


def _convert(name: str, tp: Any, raw: Any, source: str) -> Any:
    base, optional = _base_type(tp)
    if raw is None or (optional and isinstance(raw, str) and raw == ""):
        if optional:
            return None
        raise ConfigError(f"setting {name} ({source}): a value is required")
    origin = typing.get_origin(base)
    try:
        if origin in (list, tuple):
            (item,) = typing.get_args(base)[:1]
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(_convert(name, item, x.strip() if isinstance(x, str) else x, source)
                         for x in items if not (isinstance(x, str) and not x.strip()))
        if base is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(f"{raw!r} is not a boolean (true/false)")
        if base is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if base is float:
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return float(raw)
        if base is Path:
            return Path(str(raw))
        if typing.get_origin(base) is typing.Literal:
            choices = typing.get_args(base)
            if raw not in choices:
                raise ValueError(f"{raw!r} is not one of {', '.join(map(str, choices))}")
            return raw
        return str(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"setting {name} ({source}): {e}") from None


def _add_flags(p: argparse.ArgumentParser, cls: type, *, skip: Sequence[str] = (),
               show_defaults: bool = True) -> None:
    """One flag per settings field of ``cls`` (but those named in ``skip``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        base, _ = _base_type(hints[f.name])
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        shown = "" if default in (None, (), "") or f.metadata.get("secret") \
            or not show_defaults else \
            f" (default: {default})"
        kw: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help", "") + shown}
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        if base is bool:
            # --x / --no-x: a field named no_x would make "--no-x" mean x=False's opposite
            if _flag(f).startswith("--no-"):
                raise TypeError(f"boolean setting {f.name}: name it positively "
                                f"(argparse derives its --no- form)")
            p.add_argument(_flag(f), action=argparse.BooleanOptionalAction, **kw)
        elif f.metadata.get("repeat"):
            p.add_argument(_flag(f), action="append", **kw)
        else:
            p.add_argument(_flag(f), **kw)


def build_parser(cls: type, prog: str, description: str,
                 epilog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per settings field (defaults suppressed, so only the
    flags actually given override the file and the environment)."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", metavar="FILE", help="TOML file with settings (flags and the "
                   "environment override it)")
    _add_flags(p, cls)
    return p


def load(
    cls: type[T],
    service: str,
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    description: str = "",
    epilog: str | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[T, argparse.Namespace]:
    """Parse ``argv`` and build ``cls`` from defaults < ``--config`` < environment < flags.

    Returns the settings and the namespace (for extra, non-settings arguments). Raises
    ConfigError naming the setting when a value is refused.
    """
    parser = build_parser(cls, prog or f"pak {service}", description, epilog)
    if extra_args:
        extra_args(parser)
    ns = parser.parse_args(argv)
    env = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, tuple[Any, str]] = {}

    config_path = getattr(ns, "config", None) or env.get(f"PAK_{service.upper()}_CONFIG")
    if config_path:
        try:
            with open(config_path, "rb") as fh:
                doc = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"setting config: cannot read {config_path}: {e}") from None
        table = doc.get(service, doc)
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in fields:
                if isinstance(raw, dict):
                    continue  # another service's table in a shared file
                raise ConfigError(f"setting {key} ({config_path}): unknown setting")
            values[name] = (raw, f"file {config_path}")
    prefix = f"PAK_{service.upper()}_"
    for name in fields:
        var = prefix + name.upper()
        if var in env:
            values[name] = (env[var], f"environment {var}")
    for name in fields:
        if hasattr(ns, name):
            values[name] = (getattr(ns, name), f"flag {_flag(fields[name])}")

    return _build(cls, values, prefix), ns


def _build(cls: type[T], values: Mapping[str, tuple[Any, str]], prefix: str) -> T:
    """``cls`` from raw values and where each came from: converted, checked, refused with a
    ConfigError naming the setting."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for name, (raw, source) in values.items():
        value = _convert(name, hints[name], raw, source)
        check = fields[name].metadata.get("check")
        if check is not None and value is not None:
            err = check(value)
            if err:
                raise ConfigError(f"setting {name} ({source}): {err}")
        kwargs[name] = value
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"setting {name}: required (flag {_flag(f)}, environment "
                              f"{prefix}{name.upper()}, or the config file)")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def describe(obj: Any) -> dict[str, Any]:
    """The settings as a dict for a start-up log line, secrets masked."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.metadata.get("broker_urls") and isinstance(v, str):
            v = _redact_urls(v)
        out[f.name] = "***" if f.metadata.get("secret") and v else (
            str(v) if isinstance(v, Path) else v)
    return out


def _redact_urls(text: str) -> str:
    try:
        return Brokers.parse(text).redacted()
    except ConfigError:
        return "(unparsable)"




# --- the broker settings every MQTT client of pak shares -----------------------------------


def check_brokers(v: str) -> str | None:
    try:
        Brokers.parse(v)
    except ConfigError as e:
        return str(e).removeprefix("setting mqtt: ")
    return None


def _check_file(v: Path) -> str | None:
    return None if v.is_file() else f"no such file: {v}"


def _check_protocol(v: str) -> str | None:
    return None if v in ("5", "3.1.1") else "must be 5 or 3.1.1"


@dataclass(frozen=True)
class BrokerSettings:
    """The broker fields of every service that talks MQTT (gateway, tracker, API, watchlist
    CLI): the same flag, TOML key and environment variable names everywhere. Mix it in as a
    base class; :meth:`broker` gives what ``pak.mqtt.make_client`` takes. A service may
    redeclare a field to change its default (the API's ``mqtt`` is off by default)."""

    mqtt: str | None = setting(
        "mqtt://127.0.0.1:1883", metavar="URL[,URL...]", check=check_brokers, broker_urls=True,
        help="broker: mqtt://host:port or mqtts://host:port (TLS); several, comma-separated, "
             "are tried in turn when a connection fails")
    mqtt_username: str | None = setting(None, metavar="USER",
                                        help="broker user (instead of user@ in the URL)")
    mqtt_password: str | None = setting(
        None, secret=True, metavar="PASSWORD",
        help="broker password; better in the environment or --mqtt-password-file than in the "
             "URL or on the command line, which ps shows")
    mqtt_password_file: Path | None = setting(None, metavar="FILE", check=_check_file,
                                              help="file holding the broker password")
    mqtt_ca: Path | None = setting(None, metavar="FILE", check=_check_file,
                                   help="CA certificate(s) that verify an mqtts:// broker "
                                        "(default: the system's)")
    mqtt_cert: Path | None = setting(None, metavar="FILE", check=_check_file,
                                     help="client certificate for mqtts:// (with --mqtt-key)")
    mqtt_key: Path | None = setting(None, metavar="FILE", check=_check_file,
                                    help="client private key for mqtts://")
    mqtt_protocol: str = setting("5", metavar="VERSION", check=_check_protocol,
                                 help="MQTT protocol: 5 or 3.1.1 (for brokers that lack 5)")

    def __post_init__(self) -> None:
        if self.mqtt is not None:
            self.broker()

    def broker(self) -> Brokers:
        """The brokers, credentials and TLS files; ConfigError naming the setting."""
        if self.mqtt is None:
            raise ConfigError("setting mqtt: no broker configured")
        if self.mqtt_password is not None and self.mqtt_password_file is not None:
            raise ConfigError("setting mqtt_password_file: give it or mqtt_password, not both")
        if (self.mqtt_cert is None) != (self.mqtt_key is None):
            raise ConfigError("setting mqtt_cert/mqtt_key: give both or neither")
        password = self.mqtt_password
        if self.mqtt_password_file is not None:
            try:
                password = self.mqtt_password_file.read_text().rstrip("\r\n")
            except OSError as e:
                raise ConfigError(f"setting mqtt_password_file: {e}") from None
        tls = TlsFiles(*(None if p is None else str(p)
                         for p in (self.mqtt_ca, self.mqtt_cert, self.mqtt_key)))
        brokers = Brokers.parse(self.mqtt, username=self.mqtt_username, password=password,
                                tls=tls)
        if tls != TlsFiles() and not brokers.tls_on:
            raise ConfigError("setting mqtt: CA/certificate options need an mqtts:// URL")
        return brokers


def add_broker_flags(parser: argparse.ArgumentParser) -> None:
    """The :class:`BrokerSettings` flags on a command that is not built by :func:`load` (the
    watchlist CLI): the same names as every service's. Read them with :func:`broker_from_flags`.
    No broker unless ``--mqtt`` is given; the protocol is the caller's.
    """
    _add_flags(parser, BrokerSettings, skip=("mqtt_protocol",), show_defaults=False)


def broker_from_flags(ns: argparse.Namespace, service: str,
                      env: Mapping[str, str] | None = None) -> Brokers | None:
    """The brokers from :func:`add_broker_flags`' flags and ``PAK_<SERVICE>_MQTT...``
    variables (a flag beats the environment); None when no ``--mqtt`` was given."""
    env = os.environ if env is None else env
    prefix = f"PAK_{service.upper()}_"
    values: dict[str, tuple[Any, str]] = {}
    for f in dataclasses.fields(BrokerSettings):
        if f.name == "mqtt_protocol":
            continue
        var = prefix + f.name.upper()
        if getattr(ns, f.name, None) is not None:
            values[f.name] = (getattr(ns, f.name), f"flag {_flag(f)}")
        elif var in env:
            values[f.name] = (env[var], f"environment {var}")
    if "mqtt" not in values:
        return None
    return _build(BrokerSettings, values, prefix).broker()


# --- where a service serves its Prometheus metrics ------------------------------------------


def parse_host_port(text: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6::addr]:PORT`` too) -> (host, port); ValueError when it is not."""
    host, sep, port_s = text.rpartition(":")
    if not sep or not host or not port_s.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT")
    port = int(port_s)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


check_host_port: Final = parses(parse_host_port)


@dataclass(frozen=True)
class MetricsSettings:
    """``--metrics-listen HOST:PORT``, the one name every service uses for its Prometheus
    endpoint (``http://HOST:PORT/metrics``, served by ``prometheus_client``)."""

    metrics_listen: str | None = setting(
        None, metavar="HOST:PORT", check=check_host_port,
        help="serve Prometheus metrics at http://HOST:PORT/metrics (off when not set)")

    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) to serve metrics on, or None."""
        return None if self.metrics_listen is None else parse_host_port(self.metrics_listen)
