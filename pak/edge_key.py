"""``--edge-key FILE``: the edge list's hash key (``pak keys init`` writes ``DIR/edge.key``,
32 random bytes), for the tracker (which hashes the watchlist) and gateways (which hash what
they read). A service without it publishes, or holds, no edge list: a gateway's hits then
travel the bulk lane only, where the centre checks every sighting anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pak.checks import parses
from pak.settings import setting

__all__ = ["MIN_KEY_BYTES", "EdgeKeySettings", "read_edge_key"]

MIN_KEY_BYTES: Final = 16
MAX_KEY_BYTES: Final = 1024


def read_edge_key(path: str) -> bytes:
    """The key's bytes; ValueError (with why) when the file is missing or no key."""
    try:
        key = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"{path} holds {len(key)} bytes; an edge key has "
                         f"{MIN_KEY_BYTES}..{MAX_KEY_BYTES} (pak keys init writes 32)")
    return key


_check_edge_key: Final = parses(read_edge_key)


@dataclass(frozen=True)
class EdgeKeySettings:
    """``--edge-key FILE`` (settings mixin)."""

    edge_key: str | None = setting(
        None, metavar="FILE", check=_check_edge_key,
        help="the edge list's hash key (DIR/edge.key from pak keys init); without it no "
             "edge list is kept and stolen hits travel the bulk lane only")

    def edge_key_bytes(self) -> bytes | None:
        return None if self.edge_key is None else read_edge_key(self.edge_key)
