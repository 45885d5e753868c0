"""``pak keys init --dir DIR``: make the centre's signing key pair and the edge list's hash key.

Writes ``DIR/centre.key`` (private, mode 600: the tracker, API and watchlist CLI sign with it,
``--signing-key``), ``DIR/centre.pub`` (gateways verify with it, ``--centre-key``) and
``DIR/edge.key`` (the edge watchlist's HMAC key, mode 600, ``--edge-key``). Existing keys are
never overwritten: to rotate, make the new ones in another folder, give gateways both public
keys (``--centre-key new.pub --centre-key old.pub``), then switch the signers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pak.errors import ConfigError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak keys", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    init = sub.add_parser("init", help="make centre.key, centre.pub and edge.key in a folder")
    init.add_argument("--dir", required=True, type=Path, metavar="DIR",
                      help="folder for the keys (made if missing)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pak.keys import init_keys, key_id, load_signer

    try:
        paths = init_keys(args.dir)
    except FileExistsError as e:
        raise ConfigError(f"setting dir: {e}") from None
    kid = key_id(load_signer(paths[0], "keys").public_key)
    for p in paths:
        print(p)
    print(f"key id {kid}: give centre.pub to gateways (--centre-key), keep centre.key on the "
          "centre (--signing-key)")
    return 0
