"""What the client raises: a server's refusal with its code, field and message."""

from __future__ import annotations


class QuiverError(Exception):
    """A refusal the caller can act on: ``code`` is the server's (NOT_FOUND, CONFLICT, …)."""

    def __init__(self, message: str, *, code: str = "ERROR", field: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def __str__(self) -> str:
        where = f" (at {'.'.join(self.field)})" if self.field else ""
        return f"{self.code}: {self.message}{where}"


class UserError(QuiverError):
    """A mutation's ``userErrors`` entry (the first one; all of them in ``errors``)."""

    def __init__(self, errors: list[dict[str, object]]):
        first = errors[0]
        field = first.get("field")
        super().__init__(
            str(first.get("message", "")),
            code=str(first.get("code", "ERROR")),
            field=[str(part) for part in field] if isinstance(field, list) else None,
        )
        self.errors = errors


class TransportError(QuiverError):
    """The server could not be reached, or answered something that is not Quiver's API."""

    def __init__(self, message: str):
        super().__init__(message, code="UNAVAILABLE")
