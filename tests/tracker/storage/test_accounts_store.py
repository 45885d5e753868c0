"""The accounts store on both SQL backends: users, keys by hash, sessions that end when they
expire, when the user is disabled or its role changes, and the sign-in failure counter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracker.storage import open_storage
from tracker.storage.accounts import AccountExists, AccountStore, Session, UnknownAccount
from tracker.storage.accounts_sql import account_store

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.timescale)])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountStore]:
    sqlite = request.param == "sqlite"
    with open_storage(f"sqlite://{tmp_path}/acc.db" if sqlite
                      else request.getfixturevalue("pg_url")) as storage:
        storage.migrate()
        yield account_store(storage)


def session(token: str, user: str, role: str, *, hours: float = 1) -> Session:
    return Session(token, user, role, "csrf-" + token, "192.0.2.7", NOW,
                   NOW + timedelta(hours=hours))


def test_users(accounts: AccountStore) -> None:
    accounts.add_user("wang", "officer", password_hash="$argon2id$x", at=NOW)
    accounts.add_user("feed", "service", password_hash=None, at=NOW)
    with pytest.raises(AccountExists):
        accounts.add_user("wang", "admin", password_hash=None, at=NOW)
    u = accounts.get_user("wang")
    assert u is not None and u.role == "officer" and not u.disabled
    assert u.created_at == NOW and u.password_changed_at == NOW
    assert [x.name for x in accounts.users()] == ["feed", "wang"]
    assert accounts.get_user("feed").password_hash is None  # type: ignore[union-attr]
    assert accounts.get_user("nobody") is None
    with pytest.raises(UnknownAccount):
        accounts.set_disabled("nobody", True)


def test_keys_are_found_by_hash_until_revoked(accounts: AccountStore) -> None:
    accounts.add_user("feed", "service", password_hash=None, at=NOW)
    accounts.add_key("feed", "a" * 64, scopes=("watchlist:write",), at=NOW)
    accounts.add_key("feed", "b" * 64, scopes=(), at=NOW)
    k = accounts.key_by_hash("a" * 64)
    assert k is not None and k.owner == "feed" and k.role == "service"
    assert k.scopes == ("watchlist:write",) and k.key_id == "a" * 12
    assert accounts.key_by_hash("c" * 64) is None
    with pytest.raises(UnknownAccount):
        accounts.add_key("nobody", "d" * 64, scopes=(), at=NOW)
    assert accounts.revoke_keys("feed", key_id="a" * 12, at=NOW) == 1
    assert accounts.key_by_hash("a" * 64) is None
    assert accounts.key_by_hash("b" * 64) is not None
    accounts.set_disabled("feed", True)  # a disabled owner's keys stop working too
    assert accounts.key_by_hash("b" * 64) is None
    accounts.set_disabled("feed", False)
    assert accounts.revoke_keys("feed", at=NOW) == 1
    assert [k.revoked_at is not None for k in accounts.api_keys("feed")] == [True, True]


def test_sessions_end_on_expiry_disable_and_role_change(accounts: AccountStore) -> None:
    accounts.add_user("wang", "officer", password_hash="h", at=NOW)
    accounts.add_session(session("t1", "wang", "officer"))
    found = accounts.session_by_hash("t1", now=NOW)
    assert found is not None and found.user == "wang" and found.csrf_hash == "csrf-t1"
    assert accounts.session_by_hash("t1", now=NOW + timedelta(hours=1)) is None  # expired
    assert accounts.purge_sessions(now=NOW + timedelta(hours=2)) == 1

    accounts.add_session(session("t2", "wang", "officer"))
    accounts.set_disabled("wang", True)
    assert accounts.session_by_hash("t2", now=NOW) is None
    accounts.set_disabled("wang", False)
    assert accounts.session_by_hash("t2", now=NOW) is None  # ended, not just hidden

    accounts.add_session(session("t3", "wang", "officer"))
    accounts.set_role("wang", "analyst")
    assert accounts.session_by_hash("t3", now=NOW) is None
    accounts.add_session(session("t4", "wang", "analyst"))
    accounts.set_password("wang", "h2", at=NOW)
    assert accounts.session_by_hash("t4", now=NOW) is None
    accounts.add_session(session("t5", "wang", "analyst"))
    assert accounts.end_session("t5") and not accounts.end_session("t5")


def test_failure_counter_windows(accounts: AccountStore) -> None:
    since = NOW - timedelta(minutes=15)
    assert accounts.add_failure("user:wang", at=NOW, window_since=since) == 1
    assert accounts.add_failure("user:wang", at=NOW, window_since=since) == 2
    assert accounts.failures(["user:wang", "addr:x"], since=since) == {"user:wang": 2}
    later = NOW + timedelta(minutes=20)  # the window has passed: counting starts again
    assert accounts.add_failure("user:wang", at=later,
                                window_since=later - timedelta(minutes=15)) == 1
    accounts.clear_failures("user:wang")
    assert accounts.failures(["user:wang"], since=since) == {}
    accounts.add_failure("addr:old", at=NOW, window_since=since)
    accounts.add_failure("addr:new", at=later, window_since=since)
    assert accounts.purge_failures(before=later) == 1
    assert accounts.failures(["addr:old", "addr:new"], since=since) == {"addr:new": 1}
