"""What every codec of wire contract v1 shares: the version, the JSON encoding, the id, tag
and time rules of ``schemas/common.json``, the bounded loader and the schema files.

Parsers here raise :class:`~pak.errors.WireError` with a code from :mod:`pak.wire.errors`;
none of them ever raises anything else on a hostile payload.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from importlib import resources
from typing import Any, Final

import orjson

from pak.timefmt import format_time, parse_time
from pak.wire.errors import (
    BAD_VERSION,
    GATEWAY_MISMATCH,
    NOT_JSON,
    NOT_OBJECT,
    TOO_DEEP,
    TOO_LARGE,
    WireError,
)

__all__ = [
    "ID_RE",
    "SCHEMA_NAMES",
    "TAG_RE",
    "TIME_RE",
    "VERSION",
    "check_depth",
    "dumps",
    "is_int",
    "is_valid_id",
    "is_valid_tag",
    "lenient_time",
    "load_object",
    "load_schema",
    "nests_within",
    "opt_time",
    "same_gateway",
]

VERSION: Final = 1
#: Every schema file in ``pak/wire/schemas`` (``common`` holds the shared definitions).
SCHEMA_NAMES: Final = ("common", "sightings", "state", "health", "receipts", "alert",
                       "watchlist", "envelope", "presence", "edge_watchlist", "hits")

ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
TAG_RE: Final = re.compile(r"[0-9A-F]{2,64}\Z")
TIME_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, the wire's encoding."""
    return orjson.dumps(obj)


def is_valid_id(s: object) -> bool:
    """A gateway, reader or spool id: safe as one MQTT topic level."""
    return isinstance(s, str) and ID_RE.match(s) is not None


def is_valid_tag(s: object) -> bool:
    """A tag id as the wire writes it: 2-64 upper-case hex digits."""
    return isinstance(s, str) and TAG_RE.match(s) is not None


def is_int(x: object) -> bool:
    """An integer and not a bool (JSON's ``true`` is no count)."""
    return type(x) is int


def opt_time(t: datetime | None) -> str | None:
    return None if t is None else format_time(t)


def load_object(payload: bytes, max_bytes: int, *, version: bool = False) -> dict[str, Any]:
    """The JSON object in ``payload``, refused when larger than ``max_bytes``, not JSON or
    not an object; with ``version``, also unless its ``v`` is 1."""
    if len(payload) > max_bytes:
        raise WireError(TOO_LARGE, f"{len(payload)} bytes > {max_bytes}")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        # orjson also refuses nesting deeper than 1024 levels: that lands here too.
        raise WireError(NOT_JSON, str(e)[:200]) from None
    if not isinstance(obj, dict):
        raise WireError(NOT_OBJECT, type(obj).__name__)
    if version and obj.get("v") != VERSION:
        raise WireError(BAD_VERSION, repr(obj.get("v"))[:50])
    return obj


def lenient_time(obj: dict[str, Any], key: str, reason: str) -> datetime:
    """``obj[key]`` as an RFC 3339 time (any offset; status messages are not the hot path)."""
    value = obj.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_time(value)
    except ValueError:
        raise WireError(reason, f"{key}={value!r}"[:200]) from None


def nests_within(obj: object, limit: int) -> bool:
    """True when ``obj`` nests no deeper than ``limit`` containers."""
    if isinstance(obj, dict):
        return limit > 0 and all(nests_within(v, limit - 1) for v in obj.values())
    if isinstance(obj, list):
        return limit > 0 and all(nests_within(v, limit - 1) for v in obj)
    return True


def check_depth(obj: object, limit: int, detail: str) -> None:
    if not nests_within(obj, limit):
        raise WireError(TOO_DEEP, detail)


def same_gateway(obj: dict[str, Any], topic_gateway_id: str, reason: str) -> None:
    """The payload's ``gateway_id`` (when it has one) must be its topic's."""
    gid = obj.get("gateway_id", topic_gateway_id)
    if not is_valid_id(gid):
        raise WireError(reason, f"gateway_id={gid!r}"[:200])
    if gid != topic_gateway_id:
        raise WireError(GATEWAY_MISMATCH, f"payload {gid!r} on topic of {topic_gateway_id!r}")


def load_schema(name: str) -> dict[str, Any]:
    """One JSON Schema of the wire contract, by file stem (``sightings``, ``health`` ...)."""
    text = resources.files("pak.wire").joinpath("schemas", f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
