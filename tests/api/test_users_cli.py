"""``pak users``: a new password or key is the only line on stdout and works; list, disable,
reset-password, revoke-key and the one-off import of an old tokens file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from api.security import users_cli
from api.security.credentials import Passwords, secret_hash
from pak.errors import ConfigError
from tracker.storage import open_storage
from tracker.storage.accounts_sql import account_store

CHEAP = ["--argon2-time-cost", "1", "--argon2-memory-kib", "1024"]


def pak_users(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pak.cli", "users", *args],
                          capture_output=True, text=True, timeout=60)


def test_add_prints_exactly_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite3'}"
    r = pak_users("add", "chen", "--role", "admin", "--db", db, *CHEAP)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and r.stdout.strip()
    password = r.stdout.strip()
    assert "chen" in r.stderr  # the talk goes to stderr
    k = pak_users("add", "reports", "--role", "service", "--api-key",
                  "--scope", "watchlist:write", "--db", db)
    assert k.returncode == 0, k.stderr
    assert k.stdout.count("\n") == 1
    key = k.stdout.strip()
    assert key.startswith("pak_") and len(key) >= 4 + 43

    st = open_storage(db)
    try:
        acc = account_store(st)
        chen = acc.get_user("chen")
        assert chen is not None and chen.role == "admin" and chen.password_hash
        assert Passwords(time_cost=1, memory_kib=1024).verify(chen.password_hash, password)
        found = acc.key_by_hash(secret_hash(key))
        assert found is not None and found.owner == "reports"
        assert found.scopes == ("watchlist:write",)
    finally:
        st.close()
    dup = pak_users("add", "chen", "--role", "officer", "--db", db, *CHEAP)
    assert dup.returncode == 2 and dup.stdout == "" and "exists" in dup.stderr
    assert pak_users("add", "x", "--role", "service", "--db", db).returncode == 2


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = users_cli.main(list(args))
    return rc, capsys.readouterr().out


def test_manage_accounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    env_db = ["--db", db]
    _, first = run(capsys, "add", "wang", "--role", "officer", *env_db, *CHEAP)
    _, key = run(capsys, "add-key", "wang", *env_db)
    assert len(key.splitlines()) == 1
    _, listed = run(capsys, "list", "--json", *env_db)
    (row,) = [json.loads(line) for line in listed.splitlines()]
    assert row["name"] == "wang" and row["password"] and len(row["keys"]) == 1
    assert "pak_" not in listed and first.strip() not in listed  # never a secret

    _, second = run(capsys, "reset-password", "wang", *env_db, *CHEAP)
    assert len(second.splitlines()) == 1 and second != first
    rc, out = run(capsys, "revoke-key", "wang", "--key", row["keys"][0]["id"], *env_db)
    assert rc == 0 and out == ""
    assert run(capsys, "revoke-key", "wang", *env_db)[0] == 1  # nothing left to revoke
    assert run(capsys, "disable", "wang", *env_db) == (0, "")
    assert run(capsys, "set-role", "wang", "--role", "analyst", *env_db) == (0, "")

    st = open_storage(db)
    try:
        acc = account_store(st)
        wang = acc.get_user("wang")
        assert wang is not None and wang.disabled and wang.role == "analyst"
        cheap = Passwords(time_cost=1, memory_kib=1024)
        assert cheap.verify(wang.password_hash, second.strip())
        assert not cheap.verify(wang.password_hash, first.strip())
        assert acc.key_by_hash(secret_hash(key.strip())) is None
    finally:
        st.close()


def test_import_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'i.sqlite3'}"
    old = "officer-token-0123456789abcdefghijklmnop"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{old} wang officer\nshort-token-0123 zhao analyst  # old\n\n")
    assert users_cli.main(["import-tokens", str(tokens), "--db", db]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.count("is short") == 1 and "token of 'zhao' is short" in err
    assert run(capsys, "import-tokens", str(tokens), "--db", db) == (0, "")  # idempotent
    st = open_storage(db)
    try:
        acc = account_store(st)
        k = acc.key_by_hash(secret_hash(old))
        assert k is not None and k.owner == "wang" and k.role == "officer"
        zhao = acc.get_user("zhao")
        assert zhao is not None and zhao.role == "analyst" and zhao.password_hash is None
        assert len(acc.api_keys()) == 2
    finally:
        st.close()
    bad = tmp_path / "bad"
    bad.write_text("tok wang chief\n")
    with pytest.raises(ConfigError, match=r"bad:1: unknown role 'chief'"):
        users_cli.main(["import-tokens", str(bad), "--db", db])
