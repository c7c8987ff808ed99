"""The exception handlers that make every failure an OpenAI-style error response.

Handlers cover request validation (malformed JSON, wrong types, bad values), HTTP errors (404 routes,
405 methods), :class:`~groundglass.server.errors.APIError`, :class:`~groundglass.errors.GroundglassError`
(its ``status``), a database that cannot be reached (503 ``database_unavailable``: a PostgreSQL server
restarting, say) and, last, anything unexpected: logged with its traceback and answered with a short
500 body instead of a dropped connection.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.server.errors import APIError, from_groundglass

log = get_logger(__name__)


BUILTIN_NAMES = {"str", "int", "float", "bool", "list", "dict"}
RESPONSES_TOOL_TAGS = {"web_search", "web_search_preview", "fetch_url"}  # responses_schemas.Tool's tags


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _validation_error(exc: RequestValidationError) -> APIError:
    """Pydantic's error list -> one OpenAI-style error naming the first bad parameter."""
    errors = exc.errors()
    if not errors:
        return APIError(400, "invalid request", code="invalid_request")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = [str(p) for p in first.get("loc", ())]
    # FastAPI's first element says where the value came from; only it is dropped, since a field may
    # have the same name (/search's "query")
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    # Unions report the member type in loc ("str", "list[str]"), tagged unions their tag (the Responses
    # API's tools: "tools.1.fetch_url.max_urls"): drop what is not a field name.
    param = ".".join(
        p for p in loc if not any(c in p for c in "[]()") and p not in {*BUILTIN_NAMES, *RESPONSES_TOOL_TAGS}
    )
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # a tagged union's tag: name the tag field
        tag = str((first.get("ctx") or {}).get("discriminator", "")).strip("'")
        param = ".".join(p for p in (param, tag) if p)
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        return APIError(
            400,
            f"the request body is not valid JSON ({ctx.get('error', 'syntax error')})",
            code="invalid_json",
        )
    if kind == "missing":
        return APIError(
            400,
            f"missing required parameter '{param}'",
            code="missing_required_parameter",
            param=param or None,
        )
    if kind == "extra_forbidden":  # bodies that refuse what they cannot honour (the Responses API's)
        return APIError(
            400,
            f"unknown parameter '{param}': this server does not support it, so it refuses it rather than "
            "ignore it; remove it (/docs lists the fields it honours)",
            code="unknown_parameter",
            param=param or None,
        )
    msg = str(first.get("msg", "invalid value"))
    if kind == "unsupported_parameter":  # a known field this server does not implement (schemas.py)
        return APIError(400, msg, code=kind, param=param or None)
    got = first.get("input")
    if not loc and isinstance(got, bytes) and kind in ("dict_type", "model_attributes_type"):
        # FastAPI reads a body as JSON only when its Content-Type says so (curl -d sends a form's)
        return APIError(
            400,
            "the request body was not read as JSON: send it with the header "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
            code="invalid_json",
        )
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    code = "invalid_type" if kind.endswith("_type") or "parsing" in kind else "invalid_value"
    where = f"'{param}'" if param else "the request body"
    return APIError(400, f"invalid value for {where}: {msg} (got {shown})", code=code, param=param or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = _validation_error(exc)
        hook = getattr(request.app.state, "on_rejected", None)
        if hook is not None:  # the app records refused requests in its ledger
            await hook(request, error)
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code)
        return error_response(APIError(exc.status_code, detail, code=code, headers=dict(exc.headers or {})))

    @app.exception_handler(GroundglassError)
    async def _groundglass(request: Request, exc: GroundglassError) -> JSONResponse:
        return error_response(from_groundglass(exc))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", path=request.url.path, error=str(exc).splitlines()[0])
        return error_response(
            APIError(
                503,
                "the server database is unavailable; try again shortly",
                code="database_unavailable",
                type="api_error",
                headers={"Retry-After": "5"},
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error=repr(exc))
        return error_response(
            APIError(
                500,
                f"internal error ({type(exc).__name__}); the server log has details",
                code="internal_error",
            )
        )
