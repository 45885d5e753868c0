"""Accounts for API tests, made through the accounts store (there is no default account)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.security.credentials import KEY_PREFIX, Passwords, new_secret, secret_hash
from tracker.storage.accounts_sql import account_store
from tracker.storage.base import Storage

#: argon2 at its cheapest: the tests check behaviour, not cost
FAST = {"time_cost": 1, "memory_kib": 1024}


def fast_passwords() -> Passwords:
    return Passwords(**FAST)


def api_key(storage: Storage, name: str, role: str, *, scopes: tuple[str, ...] = ()) -> str:
    """A key-only account ``name`` (made if missing) and a new API key of it."""
    accounts = account_store(storage)
    now = datetime.now(UTC)
    if accounts.get_user(name) is None:
        accounts.add_user(name, role, password_hash=None, at=now)
    key = new_secret(KEY_PREFIX)
    accounts.add_key(name, secret_hash(key), scopes=scopes, at=now)
    return key


def password_user(storage: Storage, passwords: Passwords, name: str, role: str,
                  password: str) -> None:
    account_store(storage).add_user(name, role, password_hash=passwords.hash(password),
                                    at=datetime.now(UTC))
