"""pak users: the accounts of the API and the web console.

There is no default account: the first admin is made here. A command that makes a secret (a
new user's one-time password, an API key, a reset password) prints it as the only line on
standard output, so a script can capture it (KEY=$(pak users add ...)); everything else
goes to standard error. Secrets are shown once and stored only as hashes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pak.errors import ConfigError

if TYPE_CHECKING:
    from tracker.storage.accounts import AccountStore

__all__ = ["main"]

_ROLES_HELP = ("admin: accounts, readers, audit, retention | officer: watchlist, alerts, "
               "trails | analyst: trails, passes, statistics (no owner details, no watchlist "
               "changes) | service: a system using an API key limited by --scope")

EPILOG = """examples:
  pak users add chen --role admin --db postgresql://pak@db/pak          # prints a password
  pak users add wang --role officer --db postgresql://pak@db/pak
  pak users add stolen-reports --role service --api-key --scope watchlist:write \\
          --db postgresql://pak@db/pak                                   # prints a key
  pak users list --db postgresql://pak@db/pak
  pak users disable wang --db postgresql://pak@db/pak                   # ends its sessions
  pak users import-tokens /etc/pak/api-tokens --db postgresql://pak@db/pak

中文：用户与角色（管理员 admin、民警 officer、分析员 analyst、服务 service）。新密码或
API 密钥只显示一次，是标准输出的唯一一行。

Clients send an API key as 'Authorization: Bearer KEY'; the console signs in with a name and
password and keeps a session cookie. --db defaults to $PAK_DB_URL."""


def _parser() -> argparse.ArgumentParser:
    from api.security.credentials import DEFAULT_MEMORY_KIB, DEFAULT_TIME_COST
    from api.security.roles import SCOPES
    from tracker.storage.accounts import ROLES

    p = argparse.ArgumentParser(prog="pak users", description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)

    def add(name: str, help_text: str, *, who: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if who:
            sp.add_argument("name", metavar="NAME", help="the account's name")
        sp.add_argument("--db", metavar="URL", help="storage URL (default: $PAK_DB_URL)")
        return sp

    def cost(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--argon2-time-cost", type=int, default=DEFAULT_TIME_COST, metavar="N",
                        help="argon2 passes (as pak api's setting of the same name)")
        sp.add_argument("--argon2-memory-kib", type=int, default=DEFAULT_MEMORY_KIB,
                        metavar="KIB", help="argon2 memory (as pak api's setting)")

    a = add("add", "create an account; prints its one-time password (or, with --api-key, "
                   "its API key) as the only line on stdout")
    a.add_argument("--role", required=True, choices=ROLES, help=_ROLES_HELP)
    a.add_argument("--api-key", action="store_true",
                   help="a key-only account (no password): prints a new API key instead")
    a.add_argument("--scope", action="append", choices=SCOPES, default=[],
                   help="what a service key may do (repeat for several)")
    cost(a)
    k = add("add-key", "make another API key for an account; prints it")
    k.add_argument("--scope", action="append", choices=SCOPES, default=[],
                   help="what a service key may do (repeat for several)")
    ls = add("list", "list accounts and their keys (never secrets)", who=False)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    add("disable", "disable an account: its sessions end and its keys stop working")
    add("enable", "enable a disabled account again")
    r = add("set-role", "change an account's role (its sessions end)")
    r.add_argument("--role", required=True, choices=ROLES, help=_ROLES_HELP)
    rp = add("reset-password", "give an account a new one-time password (printed); its "
                               "sessions end")
    cost(rp)
    rk = add("revoke-key", "revoke an account's API keys (all, or one with --key)")
    rk.add_argument("--key", metavar="ID", help="the key's id, as 'pak users list' shows it")
    it = add("import-tokens", "one-off import of an old API tokens file (TOKEN USER [ROLE] "
                              "per line): each user becomes a key-only account and each "
                              "token its API key, so existing clients keep working", who=False)
    it.add_argument("file", type=Path, metavar="FILE", help="the tokens file")
    return p


def _say(text: str) -> None:
    print(f"pak users: {text}", file=sys.stderr)


def _read_tokens(path: Path) -> list[tuple[str, str, str]]:
    """(token, user, role) of each line of the old tokens file; ConfigError names the line."""
    from tracker.storage.accounts import ROLES

    out = []
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"tokens file {path}: {e.strerror}") from None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            raise ConfigError(f"tokens file {path}:{n}: expected TOKEN USER [ROLE]")
        role = parts[2] if len(parts) == 3 else "officer"
        if role not in ROLES:
            raise ConfigError(f"tokens file {path}:{n}: unknown role {role!r}")
        out.append((parts[0], parts[1], role))
    return out


def _run(args: argparse.Namespace, db: str) -> int:
    from api.security.credentials import (
        KEY_PREFIX,
        Passwords,
        new_password,
        new_secret,
        secret_hash,
    )
    from tracker.storage import open_storage
    from tracker.storage.accounts import AccountExists, UnknownAccount
    from tracker.storage.accounts_sql import account_store

    now = datetime.now(UTC)

    def passwords() -> Passwords:
        return Passwords(time_cost=args.argon2_time_cost, memory_kib=args.argon2_memory_kib)

    storage = open_storage(db)
    try:
        storage.migrate()
        acc = account_store(storage)
        task = args.task
        try:
            if task == "add":
                if args.scope and args.role != "service":
                    raise ConfigError("--scope: only service accounts have scopes")
                if args.api_key:
                    acc.add_user(args.name, args.role, password_hash=None, at=now)
                    key = new_secret(KEY_PREFIX)
                    acc.add_key(args.name, secret_hash(key), scopes=tuple(args.scope), at=now)
                    _say(f"created {args.role} {args.name!r} with an API key (shown once)")
                    print(key)
                else:
                    if args.role == "service":
                        raise ConfigError("--role service: services sign in with a key; "
                                          "add --api-key")
                    password = new_password()
                    acc.add_user(args.name, args.role, password_hash=passwords().hash(password),
                                 at=now)
                    _say(f"created {args.role} {args.name!r}; its password (shown once):")
                    print(password)
            elif task == "add-key":
                user = acc.get_user(args.name)
                if user is None:
                    raise UnknownAccount(args.name)
                if args.scope and user.role != "service":
                    raise ConfigError("--scope: only service accounts have scopes")
                key = new_secret(KEY_PREFIX)
                acc.add_key(args.name, secret_hash(key), scopes=tuple(args.scope), at=now)
                _say(f"new API key for {args.name!r} (shown once):")
                print(key)
            elif task == "list":
                _list(acc, as_json=args.json)
            elif task in ("disable", "enable"):
                acc.set_disabled(args.name, task == "disable")
                _say(f"{args.name!r} {task}d" + ("; its sessions ended" if task == "disable"
                                                 else ""))
            elif task == "set-role":
                acc.set_role(args.name, args.role)
                _say(f"{args.name!r} is now {args.role}; its sessions ended")
            elif task == "reset-password":
                if acc.get_user(args.name) is None:
                    raise UnknownAccount(args.name)
                password = new_password()
                acc.set_password(args.name, passwords().hash(password), at=now)
                _say(f"new password for {args.name!r} (shown once); its sessions ended:")
                print(password)
            elif task == "revoke-key":
                n = acc.revoke_keys(args.name, key_id=args.key, at=now)
                _say(f"{n} key(s) of {args.name!r} revoked")
                if n == 0:
                    return 1
            elif task == "import-tokens":
                return _import_tokens(acc, _read_tokens(args.file), now)
        except AccountExists as e:
            raise ConfigError(f"an account named {e} exists already") from None
        except UnknownAccount as e:
            raise ConfigError(f"no account named {e}") from None
    finally:
        storage.close()
    return 0


def _list(acc: AccountStore, *, as_json: bool) -> None:
    keys: dict[str, list[Any]] = {}
    for k in acc.api_keys():
        keys.setdefault(k.owner, []).append(k)
    for u in acc.users():
        row: dict[str, Any] = {"name": u.name, "role": u.role, "disabled": u.disabled,
               "password": u.password_hash is not None, "created_at": u.created_at.isoformat(),
               "keys": [{"id": k.key_id, "scopes": list(k.scopes),
                         "revoked": k.revoked_at is not None} for k in keys.get(u.name, [])]}
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        live = [k["id"] + (f"[{','.join(k['scopes'])}]" if k["scopes"] else "")
                for k in row["keys"] if not k["revoked"]]
        print(f"{u.name:<24} {u.role:<8} {'disabled' if u.disabled else 'active':<8} "
              f"{'password' if row['password'] else '-':<8} keys: {' '.join(live) or '-'}")


def _import_tokens(acc: AccountStore, entries: list[tuple[str, str, str]],
                   now: datetime) -> int:
    from api.security.credentials import secret_hash

    added = kept = 0
    for token, name, role in entries:
        if len(token) < 32:
            _say(f"warning: the token of {name!r} is short ({len(token)} characters); replace it "
                 "with 'pak users add-key' and revoke the old one")
        user = acc.get_user(name)
        if user is None:
            acc.add_user(name, role, password_hash=None, at=now)
            added += 1
        elif user.role != role:
            _say(f"{name!r} exists as {user.role}, the file says {role}: kept {user.role}")
        if acc.key_by_hash(secret_hash(token)) is None:
            acc.add_key(name, secret_hash(token), scopes=(), at=now)
            kept += 1
    _say(f"imported {kept} token(s) as API keys, {added} new account(s); delete the tokens "
         "file now")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    import os

    from tracker.db_cli import _db_url

    args = _parser().parse_args(argv)
    return _run(args, _db_url(args.db, os.environ if env is None else env))
