"""The one dependency that decides who is asking and whether they may: it runs on every route
of the app (installed by :func:`install`), looks the route up in the role table
(:mod:`api.security.roles`) and

* lets a public route through without looking at credentials;
* identifies the caller by a bearer API key (``Authorization: Bearer pak_...``) or by the
  console's session cookie; credentials in a URL are never read;
* for a cookie, refuses a cross-site request (``Sec-Fetch-Site``), an ``Origin`` other than
  the API's own, and a state change without ``Origin`` or without the session's CSRF token in
  ``X-CSRF-Token``;
* answers 401 without valid credentials, 403 when the role (or a service key's scopes) does
  not cover the route, and 403 for a route the table does not know (fail closed).

Messages are Chinese first: officers see them in the console.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, status

from api.security.credentials import Passwords, secret_hash
from api.security.login import SignIn
from api.security.roles import PUBLIC, RULES, route_key
from pak.logs import event
from pak.timefmt import utcnow
from tracker.storage.accounts import AccountStore
from tracker.storage.accounts_sql import account_store

__all__ = ["CSRF_HEADER", "Principal", "PrincipalDep", "Security", "authorize",
           "check_same_origin", "cookie_name", "get_principal", "get_security", "install"]

log = logging.getLogger("pak.api.security")

CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cookie_name(secure: bool) -> str:
    """``__Host-`` pins a secure cookie to this host and path ``/`` (browsers enforce it)."""
    return "__Host-pak_session" if secure else "pak_session"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user, their role, how they proved it; a service key's scopes."""

    user: str
    role: str
    via: str = "key"  # "key" or "session"
    scopes: tuple[str, ...] = ()
    session_hash: str | None = None

    def may(self, *roles: str) -> bool:
        """Finer checks inside a route; which routes a role reaches is the role table's job."""
        return self.role in roles


@dataclass
class Security:
    """What the dependency and the session routes share for one app."""

    accounts: AccountStore
    passwords: Passwords
    clock: Callable[[], datetime] = utcnow
    session_lifetime: timedelta = timedelta(hours=12)
    secure_cookie: bool = True
    sign_in: SignIn = field(init=False)

    def __post_init__(self) -> None:
        self.sign_in = SignIn(self.accounts, self.passwords, self.clock, self.session_lifetime)

    @property
    def cookie(self) -> str:
        return cookie_name(self.secure_cookie)


_making = threading.Lock()


def get_security(request: Request) -> Security:
    """The app's Security, made on first use from its storage and settings (a test may put
    its own in ``app.state.security`` first, e.g. with a fake clock). Made once: two would
    double the bound on concurrent password hashes."""
    state = request.app.state
    sec: Security | None = getattr(state, "security", None)
    if sec is not None:
        return sec
    with _making:
        sec = getattr(state, "security", None)
        if sec is not None:
            return sec
        s = state.settings
        sec = Security(account_store(state.storage),
                       Passwords(time_cost=s.argon2_time_cost, memory_kib=s.argon2_memory_kib),
                       session_lifetime=timedelta(hours=s.session_hours),
                       secure_cookie=s.secure_cookie)
        state.security = sec
    return sec


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, msg,
                         headers={"WWW-Authenticate": "Bearer"})


def _forbidden(msg: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, msg)


def check_same_origin(request: Request) -> str | None:
    """Refuse a browser request another site made (``Sec-Fetch-Site``, ``Origin``); the
    Origin, if the browser sent one."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise _forbidden("拒绝跨站请求 (cross-site request refused)")
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin == "null" or urlsplit(origin).netloc != host:
            raise _forbidden("请求来源不符 (Origin does not match this site)")
    return origin


def _check_cookie_request(request: Request, csrf_hash: str) -> None:
    origin = check_same_origin(request)
    if request.method in _UNSAFE:
        if origin is None:
            raise _forbidden("缺少请求来源 (Origin header required)")
        given = request.headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(secret_hash(given), csrf_hash):
            raise _forbidden("缺少或错误的 CSRF 令牌 (missing or wrong CSRF token)")


def _identify(request: Request, sec: Security) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("认证格式错误 (expected: Authorization: Bearer KEY)")
        found = sec.accounts.key_by_hash(secret_hash(key.strip()))
        if found is None:
            raise _unauthorized("API 密钥无效或已吊销 (unknown or revoked API key)")
        return Principal(found.owner, found.role, "key", found.scopes)
    token = request.cookies.get(sec.cookie)
    if token:
        session = sec.accounts.session_by_hash(secret_hash(token), now=sec.clock())
        if session is None:
            raise _unauthorized("会话已过期，请重新登录 (session ended: sign in again)")
        _check_cookie_request(request, session.csrf_hash)
        return Principal(session.user, session.role, "session",
                         session_hash=session.token_hash)
    raise _unauthorized("请先登录 (sign in first)")


def authorize(request: Request) -> Principal | None:
    """The route's rule applied to the caller: None on a public route, else the Principal."""
    route = request.scope.get("route")
    key = route_key(request.method, getattr(route, "path", request.url.path))
    if key in PUBLIC:
        return None
    sec = get_security(request)
    rule = RULES.get(key)
    who = _identify(request, sec)
    if rule is None:
        event(log, logging.ERROR, "route_without_rule", route=key)
        raise _forbidden(f"此接口未配置权限 (no access rule for {key})")
    if not rule.allows(who.role, who.scopes):
        raise _forbidden(f"无权访问：{who.role} 角色不能执行此操作 "
                         f"(the {who.role} role may not do this)")
    return who


def get_principal(who: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    """The caller of a non-public route (``authorize`` runs once per request: FastAPI
    caches a dependency's value within one request)."""
    if who is None:
        raise _unauthorized("请先登录 (sign in first)")
    return who


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def install(app: FastAPI) -> None:
    """Guard every route added to ``app`` after this call and add the session and account
    routes."""
    from api.security import sessions, users_api

    app.router.dependencies.append(Depends(authorize))
    app.include_router(sessions.router)
    app.include_router(users_api.router)
