"""Errors that become JSON responses: ``{"error": {"code": …, "message": …}}``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """An error for the client, rendered as JSON with its status.

    Args:
        status: the HTTP status.
        code: a stable machine-readable code, e.g. ``"unknown_site"``.
        message: a sentence for a person.
        details: extra fields (allowed values, the bad field…).
        headers: extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = HTTPStatus(status)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


def bad_request(message: str, code: str = "bad_request", **details: Any) -> ApiError:
    return ApiError(400, code, message, details=details)


def not_found(message: str = "not found", code: str = "not_found") -> ApiError:
    return ApiError(404, code, message)
