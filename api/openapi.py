"""The API's OpenAPI description, fit for client generation, and its offline docs.

What the generated schema is given here, for every route at once (so a new route is described
like the others without anyone remembering to):

* ``securitySchemes``: a bearer API key and the console's session cookie; every route not in
  the public list (``api.security.roles.PUBLIC``) requires one of them and documents 401 and
  403.
* One error body (:class:`api.errors.ErrorBody`) for every 4xx and 503: FastAPI's own
  ``HTTPValidationError`` is replaced by it; 413 is documented where a body is taken; 503 on
  routes that write an audit record (the query is refused when the record cannot be written).
* ``/metrics`` is Prometheus text, not JSON.
* Every free text (a string without a pattern, format or list of values) documents that it
  holds no control characters, as the input guard (``api.middleware.guard``) enforces: NUL and
  C0, DEL and C1 nowhere in parameters; in body fields tab, CR and LF are allowed.

``/docs`` is Swagger UI from the ``swagger-ui-bundle`` package, served by the API itself: the
docs work on a network without the internet (no CDN). ReDoc has no maintained Python package
without a web framework attached, so ``/redoc`` sends the reader to ``/docs``.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.errors import ErrorBody
from api.security.access import cookie_name
from api.security.roles import PUBLIC, route_key

__all__ = ["install"]

_ERROR_REF: Final = {"$ref": "#/components/schemas/ErrorBody"}
_DESCRIPTIONS: Final = {
    "401": "not signed in, or the key or session is unknown or expired",
    "403": "the caller's role may not do this",
    "404": "not found",
    "409": "conflicts with the current state",
    "413": "request body too large",
    "422": "invalid parameters or body (control characters included)",
    "503": "the database, or the audit record this query needs, is unavailable",
}
_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options")
_NO_CONTROL: Final = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # parameters (as the guard checks them)
_NO_CONTROL_TEXT: Final = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"  # body text


def _no_control(schema: Any, pattern: str) -> None:
    """Document the guard's rule on every free-text string inside ``schema``."""
    if isinstance(schema, list):
        for s in schema:
            _no_control(s, pattern)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = pattern
    for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
        if key in schema:
            _no_control(schema[key], pattern)
    for sub in schema.get("properties", {}).values():
        _no_control(sub, pattern)


def _error(status: str, description: str | None = None) -> dict[str, Any]:
    return {"description": description or _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": _ERROR_REF}}}


def describe(app: FastAPI, *, secure_cookie: bool = True) -> dict[str, Any]:
    """The app's OpenAPI document with the additions this module promises."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "bearerKey": {"type": "http", "scheme": "bearer",
                      "description": "an API key (pak users add NAME --api-key)"},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": cookie_name(secure_cookie),
                          "description": "the console's session (POST /api/v1/session); "
                          "state changes also need the X-CSRF-Token header"},
    }
    for name, model in schemas.items():
        if name != "ErrorBody":
            _no_control(model, _NO_CONTROL_TEXT)
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            for param in op.get("parameters", ()):
                _no_control(param.get("schema"), _NO_CONTROL)
            responses: dict[str, Any] = op.setdefault("responses", {})
            for status, resp in list(responses.items()):
                if status.startswith(("4", "5")):
                    responses[status] = _error(status, resp.get("description")
                                               if status not in ("422",) else None)
            if path == "/metrics":
                responses["200"] = {"description": "Prometheus text exposition format",
                                    "content": {"text/plain": {"schema": {"type": "string"}}}}
            if "requestBody" in op:
                responses.setdefault("413", _error("413"))
            if any(p.get("name") == "reason" for p in op.get("parameters", ())):
                responses.setdefault("503", _error("503"))
            if route_key(method.upper(), path) in PUBLIC:
                op["security"] = []
            else:
                op["security"] = [{"bearerKey": []}, {"sessionCookie": []}]
                responses.setdefault("401", _error("401"))
                responses.setdefault("403", _error("403"))
            if op.get("parameters") or "requestBody" in op:
                responses.setdefault("422", _error("422"))
    return schema


def install(app: FastAPI, *, secure_cookie: bool = True) -> None:
    """Replace the app's schema builder and serve the docs from packaged assets. The app must
    be made with ``docs_url=None, redoc_url=None``."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(describe(app, secure_cookie=secure_cookie))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]

    import swagger_ui_bundle  # the assets of Swagger UI, as a package (never a CDN)

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} (docs)",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse("/docs")
