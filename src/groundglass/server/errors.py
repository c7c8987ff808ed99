"""OpenAI-style errors: :class:`APIError` (a status and the body's fields), raised by routes and services.

Every error the API returns has the shape clients already parse::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "top_p", "code": "invalid_type"}}

This module knows nothing of HTTP frameworks, so services can raise these errors;
:mod:`groundglass.server.error_handlers` turns them (and every other failure) into responses.
"""

from __future__ import annotations

from typing import Any

from groundglass.errors import GroundglassError

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    """An error the API answers with: an HTTP status plus the OpenAI-style body fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or error_type(status)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def from_groundglass(exc: GroundglassError) -> APIError:
    return APIError(exc.status, str(exc), code=exc.code, param=exc.param)
