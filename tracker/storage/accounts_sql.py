"""The accounts port on either SQL backend, written once: it runs on the connection, time and
placeholder hooks of the :class:`~tracker.storage.sql_common.SqlStorage` it is given (the
same way the shared queries of sql_common do), so SQLite and PostgreSQL run the same
statements. Scopes are kept as one space-separated text column.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from tracker.storage.accounts import (
    AccountExists,
    AccountStore,
    ApiKey,
    Session,
    UnknownAccount,
    User,
)
from tracker.storage.base import Storage
from tracker.storage.sql_common import SqlStorage

__all__ = ["SqlAccountStore", "account_store"]

_USER_COLS: Final = "name, role, disabled, password_hash, created_at, password_changed_at"
_KEY_COLS: Final = "k.key_hash, k.owner, u.role, k.scopes, k.created_at, k.revoked_at"
_SESSION_COLS: Final = ("s.token_hash, s.user_name, s.role, s.csrf_hash, s.client, "
                        "s.created_at, s.expires_at")
_ADD_FAILURE: Final = """
INSERT INTO login_failures AS f (subject, failures, window_start) VALUES (?, 1, ?)
ON CONFLICT (subject) DO UPDATE SET
    failures = CASE WHEN f.window_start < ? THEN 1 ELSE f.failures + 1 END,
    window_start = CASE WHEN f.window_start < ? THEN EXCLUDED.window_start
                        ELSE f.window_start END
"""


def account_store(storage: Storage) -> AccountStore:
    """The accounts of the database ``storage`` is open on."""
    if not isinstance(storage, SqlStorage):
        raise TypeError(f"accounts need an SQL storage, not {type(storage).__name__}")
    return SqlAccountStore(storage)


class SqlAccountStore(AccountStore):
    def __init__(self, db: SqlStorage[Any]) -> None:
        self._db = db

    # --- helpers ----------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db._query(sql, params)

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._db._writing() as conn:
            return self._db._exec(conn, sql, params).rowcount

    def _t(self, t: datetime) -> Any:
        return self._db._to_time(t)

    def _user(self, r: Sequence[Any]) -> User:
        return User(r[0], r[1], bool(r[2]), r[3], self._db._from_time(r[4]),
                    self._db._from_time_opt(r[5]))

    def _key(self, r: Sequence[Any]) -> ApiKey:
        return ApiKey(r[0], r[1], r[2], tuple(r[3].split()), self._db._from_time(r[4]),
                      self._db._from_time_opt(r[5]))

    def _session(self, r: Sequence[Any]) -> Session:
        return Session(r[0], r[1], r[2], r[3], r[4], self._db._from_time(r[5]),
                       self._db._from_time(r[6]))

    def _change_user(self, sql: str, params: Sequence[Any], name: str) -> None:
        """One change of a user's row that also ends its sessions."""
        with self._db._writing() as conn:
            if self._db._exec(conn, sql, params).rowcount == 0:
                raise UnknownAccount(name)
            self._db._exec(conn, "DELETE FROM sessions WHERE user_name = ?", (name,))

    # --- users ------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, *, password_hash: str | None,
                 at: datetime) -> User:
        with self._db._writing() as conn:
            if self._db._exec(conn, "SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountExists(name)
            self._db._exec(conn, f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                           (name, role, False, password_hash, self._t(at),
                            None if password_hash is None else self._t(at)))
        return User(name, role, False, password_hash, at,
                    None if password_hash is None else at)

    def get_user(self, name: str) -> User | None:
        rows = self._rows(f"SELECT {_USER_COLS} FROM users WHERE name = ?", (name,))
        return self._user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [self._user(r) for r in self._rows(
            f"SELECT {_USER_COLS} FROM users ORDER BY name{self._db.COLLATE}")]

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._change_user("UPDATE users SET disabled = ? WHERE name = ?", (disabled, name), name)

    def set_role(self, name: str, role: str) -> None:
        self._change_user("UPDATE users SET role = ? WHERE name = ?", (role, name), name)

    def set_password(self, name: str, password_hash: str, *, at: datetime) -> None:
        self._change_user("UPDATE users SET password_hash = ?, password_changed_at = ? "
                          "WHERE name = ?", (password_hash, self._t(at), name), name)

    # --- API keys ---------------------------------------------------------------------------

    def add_key(self, owner: str, key_hash: str, *, scopes: tuple[str, ...],
                at: datetime) -> ApiKey:
        with self._db._writing() as conn:
            row = self._db._exec(conn, "SELECT role FROM users WHERE name = ?",
                                 (owner,)).fetchone()
            if row is None:
                raise UnknownAccount(owner)
            self._db._exec(conn, "INSERT INTO api_keys (key_hash, owner, scopes, created_at) "
                           "VALUES (?, ?, ?, ?)", (key_hash, owner, " ".join(scopes),
                                                   self._t(at)))
        return ApiKey(key_hash, owner, row[0], scopes, at, None)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        rows = self._rows(f"SELECT {_KEY_COLS} FROM api_keys k JOIN users u ON u.name = k.owner "
                          "WHERE k.key_hash = ? AND k.revoked_at IS NULL AND NOT u.disabled",
                          (key_hash,))
        return self._key(rows[0]) if rows else None

    def api_keys(self, owner: str | None = None) -> list[ApiKey]:
        where, params = ("WHERE k.owner = ? ", [owner]) if owner is not None else ("", [])
        return [self._key(r) for r in self._rows(
            f"SELECT {_KEY_COLS} FROM api_keys k JOIN users u ON u.name = k.owner {where}"
            f"ORDER BY k.owner{self._db.COLLATE}, k.created_at", params)]

    def revoke_keys(self, owner: str, *, key_id: str | None = None, at: datetime) -> int:
        sql = "UPDATE api_keys SET revoked_at = ? WHERE owner = ? AND revoked_at IS NULL"
        params: list[Any] = [self._t(at), owner]
        if key_id is not None:
            sql += " AND substr(key_hash, 1, ?) = ?"
            params += [len(key_id), key_id]
        return self._write(sql, params)

    # --- sessions ---------------------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        s = session
        self._write("INSERT INTO sessions (token_hash, user_name, role, csrf_hash, client, "
                    "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (s.token_hash, s.user, s.role, s.csrf_hash, s.client,
                     self._t(s.created_at), self._t(s.expires_at)))

    def session_by_hash(self, token_hash: str, *, now: datetime) -> Session | None:
        rows = self._rows(f"SELECT {_SESSION_COLS} FROM sessions s "
                          "JOIN users u ON u.name = s.user_name "
                          "WHERE s.token_hash = ? AND s.expires_at > ? AND NOT u.disabled "
                          "AND u.role = s.role", (token_hash, self._t(now)))
        return self._session(rows[0]) if rows else None

    def end_session(self, token_hash: str) -> bool:
        return self._write("DELETE FROM sessions WHERE token_hash = ?", (token_hash,)) > 0

    def purge_sessions(self, *, now: datetime) -> int:
        return self._write("DELETE FROM sessions WHERE expires_at <= ?", (self._t(now),))

    # --- sign-in throttle -------------------------------------------------------------------

    def failures(self, subjects: list[str], *, since: datetime) -> dict[str, int]:
        if not subjects:
            return {}
        cond, params = self._db._in_list("subject", subjects)
        return {r[0]: int(r[1]) for r in self._rows(
            f"SELECT subject, failures FROM login_failures WHERE {cond} AND window_start >= ?",
            [*params, self._t(since)])}

    def add_failure(self, subject: str, *, at: datetime, window_since: datetime) -> int:
        ws = self._t(window_since)
        with self._db._writing() as conn:
            self._db._exec(conn, _ADD_FAILURE, (subject, self._t(at), ws, ws))
            row = self._db._exec(conn, "SELECT failures FROM login_failures WHERE subject = ?",
                                 (subject,)).fetchone()
        return int(row[0])

    def clear_failures(self, subject: str) -> None:
        self._write("DELETE FROM login_failures WHERE subject = ?", (subject,))

    def purge_failures(self, *, before: datetime) -> int:
        return self._write("DELETE FROM login_failures WHERE window_start < ?",
                           (self._t(before),))
