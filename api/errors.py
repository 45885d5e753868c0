"""The one error body of the API, for every 4xx and 5xx it answers itself.

``{"error": code, "message": text, "detail": ...}``: ``error`` is a stable machine code
(``not_found``, ``invalid``, ``payload_too_large``...), ``message`` a line a person can read
(Chinese first where the route wrote one), ``detail`` anything more (the list of invalid fields
for ``invalid``; null otherwise). The handlers here turn every HTTPException and validation
error into it, and the middleware (body limit, control characters) writes it through
:func:`error_body`, so a client generator sees one shape for every refusal.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tracker.storage.base import StorageUnavailable
from tracker.usecases.audit import AuditNotWritten

__all__ = ["ErrorBody", "error_body", "error_code", "error_response", "install"]

_CODES: dict[int, str] = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid",
    429: "too_many_requests", 503: "unavailable",
}


class ErrorBody(BaseModel):
    """Every refusal the API answers: a code, a readable message, optional detail."""

    error: str = Field(description="machine code, e.g. not_found, invalid, forbidden")
    message: str = Field(description="what went wrong, for a person")
    detail: Any = Field(None, description="more: the invalid fields for `invalid`")


def error_code(status: int) -> str:
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(status: int, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error_code(status), "message": message, "detail": detail}


def error_response(status: int, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, detail), status_code=status,
                        headers=headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.detail, str):
        message, detail = exc.detail, None
    else:  # a route that raised with structured detail keeps it under "detail"
        message, detail = HTTPStatus(exc.status_code).phrase, exc.detail
    return error_response(exc.status_code, message, detail,
                          headers=dict(exc.headers) if exc.headers else None)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # one readable entry per problem: {"where": "query.since", "problem": "Field required"}
    problems: list[dict[str, Any]] = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg")}
        for e in exc.errors()]
    first = problems[0] if problems else {"where": "", "problem": "invalid request"}
    return error_response(422, f"参数无效 (invalid): {first['where']}: {first['problem']}",
                          problems)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, f"数据库不可用 (database unavailable): {exc}",
                          headers={"Retry-After": "5"})


async def _audit_not_written(_request: Request, exc: Exception) -> JSONResponse:
    # the query is refused: a movement query without its audit record never runs
    return error_response(503, f"审计记录无法写入，查询被拒绝 (audit record not written: {exc})",
                          headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one body."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StorageUnavailable, _unavailable)
    app.add_exception_handler(AuditNotWritten, _audit_not_written)
