"""The errors the serving objects raise, each with the status and code the API answers with
(``shared/API_CONTRACT.md``: never a 500 for bad input)."""

from __future__ import annotations

from datetime import date


class ServingError(Exception):
    """An answer other than success: ``status`` and a stable ``code`` for clients."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(ServingError):
    status, code = 400, "bad_request"


class UnauthorizedError(ServingError):
    status, code = 401, "unauthorized"


class ForbiddenError(ServingError):
    status, code = 403, "forbidden"


class NotFoundError(ServingError):
    status, code = 404, "not_found"


class ConflictError(ServingError):
    """Refused by the state of things: a cap (``cap``, with the first day it would be allowed,
    ``next_allowed``), or a supplier no longer active."""

    status, code = 409, "conflict"

    def __init__(self, message: str, next_allowed: date | None = None, cap: str | None = None):
        super().__init__(message)
        self.next_allowed = next_allowed
        self.cap = cap


class IdempotencyMismatchError(ServingError):
    status, code = 422, "idempotency_key_reused"


class UnavailableError(ServingError):
    status, code = 503, "unavailable"
