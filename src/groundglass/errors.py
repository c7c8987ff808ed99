"""Errors are values with a message a user can act on.

Every failure a user can cause or fix is raised as a :class:`GroundglassError` carrying
*what went wrong* and *how to fix it*. The CLI prints it as one line on stderr and exits
non-zero; the HTTP server turns it into an OpenAI-style JSON error with ``status``.
"""

from __future__ import annotations


class GroundglassError(Exception):
    """A problem the user can act on: ``message`` says what is wrong, ``fix`` what to do."""

    status: int = 400
    code: str = "invalid_request"

    def __init__(
        self,
        message: str,
        fix: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.param = param
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


class NotFoundError(GroundglassError):
    status = 404
    code = "not_found"


class ModelError(GroundglassError):
    """A model file is missing or corrupt, or a model endpoint is down or returns garbage."""

    status = 502
    code = "model_error"


class IndexError_(GroundglassError):
    """An index is unknown, corrupt or from a newer version."""

    code = "index_error"
