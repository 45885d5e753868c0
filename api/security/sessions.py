"""``/api/v1/session``: sign in (POST), who am I (GET), sign out (DELETE).

Signing in sets the session cookie (HttpOnly: scripts cannot read it; SameSite=Strict: no
other site's page sends it; Secure with the ``__Host-`` prefix unless ``--no-secure-cookie``)
and returns the CSRF token, which the console keeps in memory and sends as ``X-CSRF-Token``
on every change. The token itself is never in a URL or a response after this one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.security.access import (
    CSRF_HEADER,
    PrincipalDep,
    Security,
    check_same_origin,
    get_security,
)
from api.security.login import SignInRefused

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/session", tags=["session"])

SecurityDep = Annotated[Security, Depends(get_security)]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1000)


class SessionInfo(BaseModel):
    user: str
    role: str
    via: str = Field(description="session (the console's cookie) or key (an API key)")
    expires_at: str | None = None
    csrf_token: str | None = Field(default=None, description=f"send it as {CSRF_HEADER} on changes")


def client_address(request: Request) -> str:
    # The server (uvicorn) has already put X-Forwarded-For's address here when the peer is a
    # proxy it trusts (forwarded_allow_ips); otherwise it is the connection's. No header is
    # believed here.
    return request.client.host if request.client else ""


@router.post("", response_model=SessionInfo,
             responses={401: {"description": "wrong name or password"},
                        429: {"description": "too many failed sign-ins; try later"}})
def sign_in(body: Credentials, request: Request, response: Response,
            sec: SecurityDep) -> SessionInfo:
    check_same_origin(request)  # no other site signs a browser in (login CSRF)
    try:
        opened = sec.sign_in(body.user, body.password, client=client_address(request))
    except SignInRefused as e:
        if e.reason == "throttled":
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                "登录失败次数过多，请稍后再试 (too many failed sign-ins)",
                                headers={"Retry-After": str(e.retry_after_s)}) from None
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "用户名或密码错误 (wrong name or password)") from None
    s = opened.session
    response.set_cookie(sec.cookie, opened.token, httponly=True, samesite="strict",
                        secure=sec.secure_cookie, path="/",
                        max_age=int((s.expires_at - s.created_at).total_seconds()))
    response.headers["Cache-Control"] = "no-store"
    return SessionInfo(user=s.user, role=s.role, via="session",
                       expires_at=s.expires_at.isoformat(), csrf_token=opened.csrf_token)


@router.get("", response_model=SessionInfo)
def who_am_i(who: PrincipalDep) -> SessionInfo:
    return SessionInfo(user=who.user, role=who.role, via=who.via)


@router.delete("", status_code=204)
def sign_out(who: PrincipalDep, sec: SecurityDep) -> Response:
    if who.session_hash is not None:
        sec.accounts.end_session(who.session_hash)
    response = Response(status_code=204)
    response.delete_cookie(sec.cookie, path="/", secure=sec.secure_cookie, httponly=True,
                           samesite="strict")
    return response
