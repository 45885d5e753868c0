"""Signing in: the throttle, the password check and the opening of a session.

Failed sign-ins are counted per account and per client address in the database (every API
instance sees the same counts). Once a subject has too many failures in the window it is
refused without a password check until the window passes; an unknown name is counted and
throttled like a known one, and wrong password, unknown name and disabled account get the same
answer after the same work (one argon2 verification), so nothing tells which names exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from api.security.credentials import Passwords, new_secret, secret_hash
from tracker.storage.accounts import AccountStore, Session

__all__ = ["Opened", "SignIn", "SignInRefused", "ThrottlePolicy"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 30


class SignInRefused(Exception):
    """``throttled`` (retry after ``retry_after_s``) or ``bad_credentials``."""

    def __init__(self, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session and the two secrets only its holder gets (stored hashed)."""

    session: Session
    token: str
    csrf_token: str


@dataclass
class SignIn:
    accounts: AccountStore
    passwords: Passwords
    clock: Callable[[], datetime]
    lifetime: timedelta = timedelta(hours=12)
    policy: ThrottlePolicy = ThrottlePolicy()

    def __call__(self, name: str, password: str, *, client: str) -> Opened:
        now = self.clock()
        since = now - self.policy.window
        user_key, addr_key = f"user:{name}", f"addr:{client}"
        seen = self.accounts.failures([user_key, addr_key], since=since)
        if (seen.get(user_key, 0) >= self.policy.per_account
                or seen.get(addr_key, 0) >= self.policy.per_address):
            raise SignInRefused("throttled", int(self.policy.window.total_seconds()))
        user = self.accounts.get_user(name)
        usable = user is not None and not user.disabled and user.password_hash is not None
        stored = user.password_hash if usable and user is not None else None
        if not self.passwords.verify(stored, password) or user is None:
            for subject in (user_key, addr_key):
                self.accounts.add_failure(subject, at=now, window_since=since)
            raise SignInRefused("bad_credentials")
        self.accounts.clear_failures(user_key)
        # housekeeping on the (rare) successful sign-in: both deletes use an index
        self.accounts.purge_sessions(now=now)
        self.accounts.purge_failures(before=since)
        token, csrf = new_secret(), new_secret()
        session = Session(secret_hash(token), user.name, user.role, secret_hash(csrf), client,
                          now, now + self.lifetime)
        self.accounts.add_session(session)
        return Opened(session, token, csrf)
