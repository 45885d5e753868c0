"""Layered settings for every pak command: defaults < TOML file < environment < flags.

A service declares one frozen dataclass whose fields carry :func:`setting` metadata (help text,
flag name, validation). :func:`load` builds the argparse parser from it, reads ``--config
FILE`` (a TOML table per service, e.g. ``[gateway]``, or the top level), the environment
(``PAK_<SERVICE>_<NAME>``), then the flags, converts and validates every value, and refuses a
bad one with a :class:`~pak.errors.ConfigError` that names the setting and where it came from.

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
from pathlib import Path
from typing import Any, TypeVar

from pak.errors import ConfigError

__all__ = ["build_parser", "describe", "load", "non_negative", "positive", "setting"]

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
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A settings field. ``check(value)`` returns an error text or None; ``repeat`` makes a
    list flag that may be given several times (``--allow-station A --allow-station B``); in the
    environment a list is comma-separated. ``secret`` values are masked in :func:`describe`."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "check": check, "repeat": repeat,
            "secret": secret}
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
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        base, _ = _base_type(hints[f.name])
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        shown = "" if default in (None, (), "") or f.metadata.get("secret") else \
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
    hints = typing.get_type_hints(cls)
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
        return cls(**kwargs), ns
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def describe(obj: Any) -> dict[str, Any]:
    """The settings as a dict for a start-up log line, secrets masked."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = "***" if f.metadata.get("secret") and v else (
            str(v) if isinstance(v, Path) else v)
    return out


def positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must not be negative"
