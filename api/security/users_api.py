"""``GET /api/v1/users``: the accounts, for admins (changes stay on the command line, ``pak
users``, where a new secret can be printed once). Never a secret or a hash."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.security.access import Security, get_security

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/users", tags=["accounts"])


class KeyInfo(BaseModel):
    id: str
    scopes: list[str]
    created_at: str
    revoked: bool


class UserInfo(BaseModel):
    name: str
    role: str
    disabled: bool
    password: bool
    created_at: str
    password_changed_at: str | None
    keys: list[KeyInfo]


@router.get("", response_model=list[UserInfo])
def list_users(sec: Annotated[Security, Depends(get_security)]) -> list[UserInfo]:
    keys: dict[str, list[KeyInfo]] = {}
    for k in sec.accounts.api_keys():
        keys.setdefault(k.owner, []).append(KeyInfo(
            id=k.key_id, scopes=list(k.scopes), created_at=k.created_at.isoformat(),
            revoked=k.revoked_at is not None))
    return [UserInfo(name=u.name, role=u.role, disabled=u.disabled,
                     password=u.password_hash is not None, created_at=u.created_at.isoformat(),
                     password_changed_at=None if u.password_changed_at is None
                     else u.password_changed_at.isoformat(),
                     keys=keys.get(u.name, [])) for u in sec.accounts.users()]
