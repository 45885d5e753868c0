"""API tokens: who is asking. Tokens live in a file (``TOKEN USER [ROLE]`` per line) so an
administrator can rotate them without a database; compared in constant time."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from pak.errors import ConfigError

__all__ = ["ROLES", "Principal", "TokenBook"]

ROLES = ("officer", "analyst", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


class TokenBook:
    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> TokenBook:
        entries: dict[str, Principal] = {}
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (2, 3) or len(parts[0]) < 16:
                raise ConfigError(f"tokens file {path}:{n}: expected TOKEN USER [ROLE], "
                                  "tokens of at least 16 characters")
            role = parts[2] if len(parts) == 3 else "officer"
            if role not in ROLES:
                raise ConfigError(f"tokens file {path}:{n}: unknown role {role!r}")
            entries[parts[0]] = Principal(parts[1], role)
        return cls(entries)

    def lookup(self, token: str) -> Principal | None:
        found = None
        for known, who in self._entries.items():
            # compare against every entry: the time taken does not depend on which matched
            if hmac.compare_digest(known.encode(), token.encode()):
                found = who
        return found
