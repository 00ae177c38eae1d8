"""Refusals a caller can fix (they become ``userErrors``) and faults in a query's arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

FieldPath = tuple[str, ...]


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    TOO_LARGE = "TOO_LARGE"
    UNAUTHENTICATED = "UNAUTHENTICATED"


@dataclass(frozen=True)
class Problem:
    field: FieldPath | None
    message: str
    code: ErrorCode


class Refused(Exception):
    """An operation refused for reasons the caller can fix; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)

    @classmethod
    def one(cls, field: FieldPath | None, message: str, code: ErrorCode) -> Refused:
        return cls([Problem(field, message, code)])

    @classmethod
    def invalid(cls, field: FieldPath | None, message: str) -> Refused:
        return cls.one(field, message, ErrorCode.INVALID)

    @classmethod
    def not_found(cls, field: FieldPath | None, message: str) -> Refused:
        return cls.one(field, message, ErrorCode.NOT_FOUND)

    @classmethod
    def conflict(cls, field: FieldPath | None, message: str) -> Refused:
        return cls.one(field, message, ErrorCode.CONFLICT)

    @classmethod
    def forbidden(cls, field: FieldPath | None, message: str) -> Refused:
        return cls.one(field, message, ErrorCode.FORBIDDEN)


class ArgumentError(Exception):
    """A query argument that cannot be served (bad cursor, page too large): a readable error."""
