"""The input guard: bad input gets a 4xx before the app does any work for it.

Invariants:

* A body larger than ``max_body`` never reaches the app and is never held in memory: a
  ``Content-Length`` above the limit is answered 413 before one byte is received (and so before
  authentication); a body without a length (chunked) is counted as it streams and refused at
  the first chunk past the limit, so at most ``max_body`` bytes are buffered.
* NUL and other control characters are refused with 422: C0, DEL and C1 in the path and every
  query parameter; C0 and DEL in every string of a JSON body (there tab, CR and LF are
  allowed: notes have lines). One check here serves every route, present and future.
* Refusals carry the API's one error body (:mod:`api.errors`).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

__all__ = ["DEFAULT_MAX_BODY", "InputGuard", "control_chars_in"]

DEFAULT_MAX_BODY: Final = 1 << 20  # the app passes its own (api.app.MAX_BODY_BYTES)

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_chars_in(value: Any, *, text: bool = True) -> bool:
    """True when a string anywhere in ``value`` (nested lists and objects, keys included)
    holds a control character; ``text`` allows tab, CR and LF."""
    pattern = _CONTROL_IN_TEXT if text else _CONTROL
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, list):
        return any(control_chars_in(v, text=text) for v in value)
    if isinstance(value, dict):
        return any(control_chars_in(k, text=text) or control_chars_in(v, text=text)
                   for k, v in value.items())
    return False


class _TooLarge(Exception):
    pass


async def _answer(send: Send, status: int, message: str, detail: Any = None) -> None:
    body = orjson.dumps(error_body(status, message, detail))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _too_large(limit: int) -> str:
    return f"请求体过大 (request body larger than {limit} bytes)"


class InputGuard:
    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _answer(send, 400, "Content-Length 无效 (invalid Content-Length)")
                return
            if declared > self.max_body:
                await _answer(send, 413, _too_large(self.max_body))
                return
        where = self._control_in_url(scope)
        if where is not None:
            await _answer(send, 422, f"参数含控制字符 (control character in {where})",
                          [{"where": where, "problem": "control characters are not allowed"}])
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS") and length is None \
                and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await _answer(send, 413, _too_large(self.max_body))
            return
        if body and b"json" in headers.get(b"content-type", b""):
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None  # the route's own validation answers a malformed body
            if control_chars_in(parsed):
                await _answer(send, 422, "请求体含控制字符 (control character in the body)",
                              [{"where": "body",
                                "problem": "control characters are not allowed"}])
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _control_in_url(scope: Scope) -> str | None:
        if _CONTROL.search(scope["path"]):  # already percent-decoded by the server
            return "path"
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8",
                                     errors="replace"):
            if _CONTROL.search(name) or _CONTROL.search(value):
                return f"query.{_CONTROL.sub('?', name)}"
        return None

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once (already read and checked), then the client's own messages
    (disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
