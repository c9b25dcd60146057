"""The errors the serving objects raise, each with the status and code the API answers with
(``shared/API_CONTRACT.md``: never a 500 for bad input)."""

from __future__ import annotations


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
    status, code = 409, "conflict"


class IdempotencyMismatchError(ServingError):
    status, code = 422, "idempotency_key_reused"


class UnavailableError(ServingError):
    status, code = 503, "unavailable"
