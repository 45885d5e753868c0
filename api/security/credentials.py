"""Passwords, API keys and session tokens: how they are made and checked.

* Passwords are hashed with argon2id; at most ``concurrent`` hashes run at once (each takes
  ``memory_kib`` of memory, so a burst of sign-ins cannot exhaust the box), and a sign-in for
  an unknown or disabled user verifies against a dummy hash, so the time taken does not tell
  which names exist.
* API keys and session tokens are 256-bit random values. Being random, they need no slow hash:
  they are stored and looked up by their SHA-256 (one index probe, microseconds, no scan).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["DEFAULT_MEMORY_KIB", "DEFAULT_TIME_COST", "KEY_PREFIX", "Passwords", "new_password",
           "new_secret", "secret_hash"]

#: argon2 cost by default (RFC 9106's second recommended option: 3 passes over 64 MiB)
DEFAULT_TIME_COST: Final = 3
DEFAULT_MEMORY_KIB: Final = 65536
#: API keys start with this, so a leaked one is recognisable (secret scanners, logs).
KEY_PREFIX: Final = "pak_"


def new_secret(prefix: str = "") -> str:
    """A fresh 256-bit random secret, URL-safe text."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """How a key or token is stored and looked up: hex SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_password() -> str:
    """A one-time password for a new or reset account (about 120 random bits)."""
    return secrets.token_urlsafe(15)


class Passwords:
    """argon2id hashing with a bound on concurrent hashes and a dummy hash for absent users."""

    def __init__(self, *, time_cost: int = DEFAULT_TIME_COST,
                 memory_kib: int = DEFAULT_MEMORY_KIB, parallelism: int = 1,
                 concurrent: int = 2) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism)
        self._slots = threading.BoundedSemaphore(concurrent)
        self._count_lock = threading.Lock()
        #: argon2 computations run so far (hashes and verifications, dummy ones included)
        self.computations = 0
        self._dummy = self.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        with self._slots:
            self._counted()
            return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches the ``stored`` hash. ``None`` (no such user, or one
        that may not sign in) still costs one verification, against the dummy hash, and is
        always False."""
        target = self._dummy if stored is None else stored
        with self._slots:
            self._counted()
            try:
                ok: bool = self._hasher.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        return ok and stored is not None

    def _counted(self) -> None:
        with self._count_lock:
            self.computations += 1

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other cost settings than the current ones."""
        return self._hasher.check_needs_rehash(stored)
