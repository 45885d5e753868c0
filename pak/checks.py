"""Value checks for settings fields (``setting(check=...)``): each returns an error text, or
None when the value is acceptable. Shared by every service's settings class."""

from __future__ import annotations

import ipaddress
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from pak.broker_url import BrokerUrl
from pak.errors import ConfigError
from pak.wire.common import is_valid_id

__all__ = ["at_least", "between", "broker_url", "existing_file", "is_loopback", "log_format",
           "log_level", "mqtt_protocol", "one_of", "parses", "time_zone", "topic_root",
           "valid_id"]

Check = Callable[[object], str | None]
T = TypeVar("T")


def parses(parse: Callable[[T], object],
           errors: tuple[type[Exception], ...] = (ValueError,)) -> Callable[[T], str | None]:
    """The check "``parse`` accepts the value": the text of the error it raises (one of
    ``errors``), or None. A setting whose parser names what is wrong needs no other check."""
    def check(v: T) -> str | None:
        try:
            parse(v)
        except errors as e:
            return str(e)
        return None
    return check


def is_loopback(host: str) -> bool:
    """True for a host name or address on this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def between(lo: float, hi: float) -> Callable[[float], str | None]:
    def check(v: float) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"
    return check


def at_least(lo: float) -> Callable[[float], str | None]:
    def check(v: float) -> str | None:
        return None if v >= lo else f"must be at least {lo:g}"
    return check


def one_of(*choices: str) -> Callable[[str], str | None]:
    def check(v: str) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check


def valid_id(v: str) -> str | None:
    return None if is_valid_id(v) else (
        "must be 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit")


def topic_root(v: str) -> str | None:
    if not v or v.startswith("/") or v.endswith("/") or any(c in v for c in "+#\0"):
        return "must be a topic prefix without wildcards or leading/trailing '/'"
    return None


broker_url: Final = parses(BrokerUrl.parse, (ConfigError,))


def existing_file(v: Path) -> str | None:
    return None if v.is_file() else f"no such file: {v}"


def time_zone(v: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {v!r} (an IANA name such as Asia/Shanghai or UTC)"
    return None


def mqtt_protocol(v: str) -> str | None:
    return None if v in ("5", "3.1.1") else "must be 5 or 3.1.1"


def log_level(v: str) -> str | None:
    return None if v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR") else \
        "must be debug, info, warning or error"


def log_format(v: str) -> str | None:
    return None if v in ("text", "json") else "must be text or json"
