"""Error codes and the one exception type that carries them to the client.

Every failure a caller can cause is a `DomainError` with a stable `code`; the API turns it into
`{"code", "message", "details"}` with its HTTP status, the CLI prints it, and tests assert on the
code rather than on wording.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status is not None:
            self.status = status

    def as_payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(DomainError):
    """Also what another store's object looks like: we never confirm that it exists."""

    status = 404

    def __init__(self, what: str = "object", *, details: dict[str, Any] | None = None):
        super().__init__("not_found", f"{what} not found", details=details)


class PermissionDenied(DomainError):
    status = 403

    def __init__(self, message: str = "not allowed", *, details: dict[str, Any] | None = None):
        super().__init__("permission_denied", message, details=details)


class Conflict(DomainError):
    status = 409


class ValidationFailed(DomainError):
    status = 422

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", details: dict[str, Any] | None = None):
        merged = dict(details or {})
        if field is not None:
            merged.setdefault("field", field)
        super().__init__(code, message, details=merged)
