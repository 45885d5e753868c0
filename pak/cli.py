"""The ``pak`` command: one entry point, a subcommand per job.

This module only wires components together: each subcommand imports its component inside
the function that runs it, so ``pak decode`` on a technician's laptop never loads the
database driver, and an edge box without the server extras can still run ``pak gateway``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pak import __version__
from pak.errors import ConfigError, PakError

__all__ = ["main"]

# subcommand -> (module:function taking argv, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pak.demo:main", "run the whole pipeline on embedded defaults (no services needed)"),
    "gateway": ("gateway.cli:main", "edge gateway: reader link -> sightings -> spool -> MQTT"),
    "tracker": ("tracker.cli:main", "central tracker: ingest, storage, alerts, receipts"),
    "api": ("api.cli:main", "HTTP API and web console"),
    "sim": ("firmware_sim.cli:main", "simulated readers and city traffic"),
    "decode": ("gateway.decode_cli:main", "decode a reader capture (hex or raw bytes) to JSON"),
    "db": ("tracker.db_cli:main", "database tasks: migrate, info"),
    "keys": ("pak.keys_cli:main", "signing keys: init (centre key pair, edge list key)"),
    "users": ("api.security.users_cli:main", "accounts of the API and console: add, list, "
              "disable, keys"),
    "watchlist": ("tracker.watchlist_cli:main", "stolen-vehicle watchlist: add, remove, list"),
    "trail": ("tracker.trail_cli:main", "a tag's trail (audited)"),
    "audit": ("tracker.audit_cli:main", "the audit log's hash chain: verify, head"),
    "bench": ("benchmarks.cli:main", "run the benchmarks, print JSON"),
}

# Packages of the source tree that the wheel leaves out. An editable install does not map
# them either, so they are looked up beside the pak package, where a checkout has them.
CHECKOUT_ONLY = frozenset({"benchmarks"})


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: pak COMMAND [options]   (pak {__version__})", "",
             "pak: gateway and tracking service for RFID safety cards.", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "Run 'pak COMMAND --help' for the options of one command."]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[Sequence[str]], int | None]:
    module, _, func = target.partition(":")
    top = module.partition(".")[0]
    if top in CHECKOUT_ONLY and importlib.util.find_spec(top) is None:
        checkout = Path(__file__).resolve().parents[1]
        if (checkout / top / "__init__.py").is_file():
            sys.path.append(str(checkout))
    fn: Callable[[Sequence[str]], int | None] = getattr(importlib.import_module(module), func)
    return fn


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        print(f"pak {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"pak: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        fn = _resolve(COMMANDS[name][0])
    except ModuleNotFoundError as e:
        if e.name in CHECKOUT_ONLY:
            print(f"pak {name}: the {e.name} are not installed: they come with a source "
                  "checkout, not the wheel (in the checkout: pip install -e '.[dev]')",
                  file=sys.stderr)
            return 2
        print(f"pak {name}: a component is not installed ({e.name}); install the matching "
              "extra, e.g. pip install 'pak[gateway]' or 'pak[server]'", file=sys.stderr)
        return 2
    try:
        return int(fn(rest) or 0)
    except ConfigError as e:
        print(f"pak {name}: {e}", file=sys.stderr)
        return 2
    except PakError as e:
        print(f"pak {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
