"""Signing in to the API: the session cookie, Origin and CSRF checks on cookie requests, the
same answer and the same argon2 work for every kind of wrong sign-in, the throttle, sessions
that expire (injected clock) or end when the account is disabled or changes role, keys that
stop working when revoked, and the bound on concurrent password hashes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security.access import Security
from api.security.credentials import Passwords, secret_hash
from api.settings import ApiSettings
from tests.api.accounts import FAST, api_key, fast_passwords, password_user
from tracker.storage.accounts import AccountStore
from tracker.storage.accounts_sql import account_store
from tracker.storage.base import Storage

SITE = "http://testserver"  # TestClient's origin
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def security(storage: Storage, clock: Clock) -> Security:
    sec = Security(account_store(storage), fast_passwords(), clock=clock,
                   session_lifetime=timedelta(hours=8), secure_cookie=False)
    password_user(storage, sec.passwords, "wang", "officer", PASSWORD)
    return sec


@pytest.fixture
def client(storage: Storage, security: Security) -> Iterator[TestClient]:
    app = create_app(ApiSettings(db="sqlite:///unused"), storage=storage)
    app.state.security = security
    with TestClient(app) as c:
        yield c


def sign_in(client: TestClient, user: str = "wang", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"user": user, "password": password},
                       headers={"Origin": SITE})


def signed_in(client: TestClient) -> str:
    r = sign_in(client)
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token


def test_sign_in_sets_a_strict_http_only_cookie(client: TestClient) -> None:
    r = sign_in(client)
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == "wang" and body["role"] == "officer" and body["via"] == "session"
    assert len(body["csrf_token"]) >= 43  # 256 bits, URL-safe
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pak_session=")
    for part in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert part in cookie
    me = client.get("/api/v1/session")
    assert me.status_code == 200 and me.json()["user"] == "wang"
    assert me.json()["csrf_token"] is None  # given once, at sign-in
    assert client.get("/api/v1/alerts").status_code == 200  # the cookie is a credential


def test_no_other_site_signs_a_browser_in(client: TestClient) -> None:
    r = client.post("/api/v1/session", json={"user": "wang", "password": PASSWORD},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "set-cookie" not in r.headers


def test_secure_cookie_uses_the_host_prefix(storage: Storage, security: Security) -> None:
    security.secure_cookie = True
    app = create_app(ApiSettings(db="sqlite:///unused"), storage=storage)
    app.state.security = security
    with TestClient(app) as c:
        cookie = sign_in(c).headers["set-cookie"]
    assert cookie.startswith("__Host-pak_session=") and "Secure" in cookie


def test_cookie_changes_need_origin_and_csrf(client: TestClient, storage: Storage) -> None:
    csrf = signed_in(client)
    report = {"tag_id": "AABBCCDD", "case_no": "C-1"}

    def post(headers: dict[str, str]) -> int:
        return client.post("/api/v1/watchlist", json=report, headers=headers).status_code

    assert post({"X-CSRF-Token": csrf}) == 403  # no Origin
    assert post({"Origin": SITE}) == 403  # no CSRF token
    assert post({"Origin": SITE, "X-CSRF-Token": csrf + "x"}) == 403
    assert post({"Origin": "https://evil.example", "X-CSRF-Token": csrf}) == 403
    assert client.get("/api/v1/alerts", headers={"Origin": "https://evil.example"}
                      ).status_code == 403
    assert client.get("/api/v1/alerts", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert storage.watchlist() == []
    assert post({"Origin": SITE, "X-CSRF-Token": csrf}) == 201


def test_no_credential_in_a_url_is_read(client: TestClient, storage: Storage) -> None:
    key = api_key(storage, "feed", "service", scopes=("alerts:read",))
    assert client.get("/api/v1/alerts", params={"access_token": key}).status_code == 401
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {key}"}
                      ).status_code == 200


def test_every_wrong_sign_in_looks_and_costs_the_same(client: TestClient, storage: Storage,
                                                      security: Security) -> None:
    password_user(storage, security.passwords, "li", "officer", PASSWORD)
    account_store(storage).set_disabled("li", True)
    api_key(storage, "feed", "service")  # key-only: no password to sign in with
    answers = []
    for user, password in (("wang", "wrong"), ("nobody", PASSWORD), ("li", PASSWORD),
                           ("feed", PASSWORD)):
        before = security.passwords.computations
        r = sign_in(client, user, password)
        # one argon2 verification each: the dummy hash stands in for a missing one
        assert security.passwords.computations == before + 1, user
        answers.append((r.status_code, r.json()))
    assert answers[0][0] == 401 and all(a == answers[0] for a in answers)


def test_sign_in_is_throttled_per_account(client: TestClient, security: Security,
                                          clock: Clock) -> None:
    for _ in range(security.sign_in.policy.per_account):
        assert sign_in(client, password="guess").status_code == 401
    before = security.passwords.computations
    r = sign_in(client)  # even the right password, until the window passes
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert security.passwords.computations == before  # refused before any argon2 work
    clock.now += security.sign_in.policy.window + timedelta(seconds=1)
    assert sign_in(client).status_code == 200


def test_sign_in_is_throttled_per_address(client: TestClient, security: Security) -> None:
    for i in range(security.sign_in.policy.per_address):
        assert sign_in(client, f"user{i}", "guess").status_code == 401
    assert sign_in(client).status_code == 429  # another name, the same address


def test_a_success_clears_the_account_count(client: TestClient, security: Security) -> None:
    for _ in range(security.sign_in.policy.per_account - 1):
        sign_in(client, password="guess")
    assert sign_in(client).status_code == 200
    assert sign_in(client, password="guess").status_code == 401
    assert sign_in(client).status_code == 200


def test_sessions_expire(client: TestClient, clock: Clock) -> None:
    signed_in(client)
    clock.now += timedelta(hours=8) - timedelta(seconds=1)
    assert client.get("/api/v1/session").status_code == 200
    clock.now += timedelta(seconds=2)
    r = client.get("/api/v1/session")
    assert r.status_code == 401 and "重新登录" in r.json()["message"]


@pytest.mark.parametrize("change", ["disable", "role"])
def test_disabling_or_changing_role_ends_sessions(client: TestClient, storage: Storage,
                                                  change: str) -> None:
    signed_in(client)
    accounts: AccountStore = account_store(storage)
    if change == "disable":
        accounts.set_disabled("wang", True)
    else:
        accounts.set_role("wang", "analyst")
    assert client.get("/api/v1/session").status_code == 401


def test_sign_out_ends_the_session(client: TestClient) -> None:
    csrf = signed_in(client)
    cookie = client.cookies.get("pak_session")
    assert client.delete("/api/v1/session", headers={"Origin": SITE}).status_code == 403
    r = client.delete("/api/v1/session", headers={"Origin": SITE, "X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert client.get("/api/v1/session").status_code == 401
    # the old cookie, replayed, is no longer a session
    client.cookies.set("pak_session", cookie or "")
    assert client.get("/api/v1/session").status_code == 401


def test_revoked_keys_are_refused(client: TestClient, storage: Storage) -> None:
    key = api_key(storage, "chen", "admin")
    auth = {"Authorization": f"Bearer {key}"}
    r = client.get("/api/v1/session", headers=auth)
    assert r.json() == {"user": "chen", "role": "admin", "via": "key", "expires_at": None,
                        "csrf_token": None}
    account_store(storage).revoke_keys("chen", at=datetime.now(UTC))
    assert client.get("/api/v1/session", headers=auth).status_code == 401
    assert client.get("/api/v1/session", headers={"Authorization": "Basic x"}
                      ).status_code == 401


def test_argon2_round_trip_and_rehash() -> None:
    p = Passwords(**FAST)
    h = p.hash("密码 with spaces")
    assert h.startswith("$argon2id$")
    assert p.verify(h, "密码 with spaces")
    assert not p.verify(h, "密码 with space")
    assert not p.verify("not a hash", "x")
    assert not p.verify(None, "anything")
    assert not p.needs_rehash(h)
    assert Passwords(time_cost=2, memory_kib=1024).needs_rehash(h)


def test_at_most_two_hashes_at_once() -> None:
    p = Passwords(**FAST)
    inside = threading.Semaphore(0)
    release = threading.Event()
    real = p._hasher

    class Held:
        def hash(self, password: str) -> str:
            inside.release()
            release.wait(10)
            return real.hash(password)

    p._hasher = Held()  # type: ignore[assignment]
    threads = [threading.Thread(target=p.hash, args=(str(i),)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        assert inside.acquire(timeout=10) and inside.acquire(timeout=10)  # two got in
        assert not p._slots.acquire(blocking=False)  # and every slot is taken
    finally:
        release.set()
        for t in threads:
            t.join(10)
    assert p.computations == 5  # the dummy hash, then the four


def test_admins_list_accounts_without_secrets(client: TestClient, storage: Storage) -> None:
    key = api_key(storage, "chen", "admin")
    r = client.get("/api/v1/users", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    users = {u["name"]: u for u in r.json()}
    assert users["wang"]["role"] == "officer" and users["wang"]["password"]
    assert users["chen"]["keys"][0]["id"] == secret_hash(key)[:12]
    assert "argon2" not in r.text and key not in r.text
