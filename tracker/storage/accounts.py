"""The accounts port: users, API keys, sessions and sign-in failures, as the API's security
layer and ``pak users`` need them (implemented for both SQL backends in
:mod:`tracker.storage.accounts_sql`).

Invariants the implementations keep:

* secrets are never stored: a password as its argon2 hash (made by the caller), a key or a
  session token as the hex SHA-256 the caller computed;
* disabling a user, or changing its role, ends its sessions in the same transaction;
* a session is found only before its ``expires_at``, while its user is enabled and still has
  the role the session was opened with; a key only while unrevoked and its owner enabled.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

__all__ = ["ROLES", "AccountExists", "AccountStore", "ApiKey", "Session", "UnknownAccount",
           "User"]

#: Every role an account may have (the table of what each may do is in api.security.roles).
ROLES: Final = ("admin", "officer", "analyst", "service")


class AccountExists(Exception):
    """A user of that name is already there."""


class UnknownAccount(Exception):
    """No user (or key) of that name."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    disabled: bool
    password_hash: str | None  # None: a key-only account (services)
    created_at: datetime
    password_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_hash: str
    owner: str
    role: str  # the owner's role
    scopes: tuple[str, ...]  # what a service key may do; () for a person's key (their role)
    created_at: datetime
    revoked_at: datetime | None

    @property
    def key_id(self) -> str:
        """The public handle of a key (``pak users list``, ``revoke-key --key``)."""
        return self.key_hash[:12]


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user: str
    role: str
    csrf_hash: str
    client: str
    created_at: datetime
    expires_at: datetime


class AccountStore(Protocol):
    """Where accounts live (a port beside the storage's ports by aggregate). Every method is
    one transaction."""

    # --- users ------------------------------------------------------------------------------

    @abstractmethod
    def add_user(self, name: str, role: str, *, password_hash: str | None,
                 at: datetime) -> User:
        """Create a user; AccountExists if the name is taken."""

    @abstractmethod
    def get_user(self, name: str) -> User | None: ...

    @abstractmethod
    def users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (ending its sessions) or enable a user; UnknownAccount if none."""

    @abstractmethod
    def set_role(self, name: str, role: str) -> None:
        """Change a user's role, ending its sessions; UnknownAccount if none."""

    @abstractmethod
    def set_password(self, name: str, password_hash: str, *, at: datetime) -> None:
        """Replace a user's password hash, ending its sessions; UnknownAccount if none."""

    # --- API keys ---------------------------------------------------------------------------

    @abstractmethod
    def add_key(self, owner: str, key_hash: str, *, scopes: tuple[str, ...],
                at: datetime) -> ApiKey:
        """Store a new key of ``owner``; UnknownAccount if there is no such user."""

    @abstractmethod
    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The unrevoked key with this hash whose owner is enabled (one index probe)."""

    @abstractmethod
    def api_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys (revoked ones too) of one owner or of everyone."""

    @abstractmethod
    def revoke_keys(self, owner: str, *, key_id: str | None = None, at: datetime) -> int:
        """Revoke the owner's unrevoked keys (only the one ``key_id`` names, if given);
        the number revoked."""

    # --- sessions ---------------------------------------------------------------------------

    @abstractmethod
    def add_session(self, session: Session) -> None: ...

    @abstractmethod
    def session_by_hash(self, token_hash: str, *, now: datetime) -> Session | None:
        """The live session with this token hash (see the module's invariants)."""

    @abstractmethod
    def end_session(self, token_hash: str) -> bool: ...

    @abstractmethod
    def purge_sessions(self, *, now: datetime) -> int:
        """Delete expired sessions; how many."""

    # --- sign-in throttle -------------------------------------------------------------------

    @abstractmethod
    def failures(self, subjects: list[str], *, since: datetime) -> dict[str, int]:
        """Failed sign-ins of each subject in a window that started at or after ``since``."""

    @abstractmethod
    def add_failure(self, subject: str, *, at: datetime, window_since: datetime) -> int:
        """Count one failure (a window older than ``window_since`` starts again at ``at``);
        the subject's failures in its window."""

    @abstractmethod
    def clear_failures(self, subject: str) -> None: ...

    @abstractmethod
    def purge_failures(self, *, before: datetime) -> int:
        """Forget failure counts whose window started before ``before``; how many."""
