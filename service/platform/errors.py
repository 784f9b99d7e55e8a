"""Domain errors carry their meaning and HTTP status; one handler in main.py renders them."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, message_en: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_en = message_en or message


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"


class TemporarilyUnavailable(DomainError):
    status_code = 503
    code = "temporarily_unavailable"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"
