"""Refusals a caller can fix (they become ``userErrors``) and faults in a query's arguments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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

    def __init__(
        self, problems: Sequence[Problem], *, payload: dict[str, Any] | None = None
    ) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)
        # Fields the mutation's payload carries beside userErrors (commitFiles' missingBlobs).
        self.payload = payload or {}

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
    """A query argument the caller can fix (bad cursor, page too large, an ID of another
    kind): a GraphQL error whose ``extensions`` carry its ``code`` and ``argument``.

    Messages name their argument first, in backticks (`` `after` is not a cursor…``); that
    name is the ``argument`` unless one is given.
    """

    def __init__(
        self, message: str, *, argument: str | None = None, code: ErrorCode = ErrorCode.INVALID
    ) -> None:
        super().__init__(message)
        # graphql-core copies an original error's ``extensions`` into the GraphQL error.
        self.extensions: dict[str, Any] = {"code": code.value}
        named = argument or _first_quoted_name(message)
        if named is not None:
            self.extensions["argument"] = named

    @classmethod
    def not_found(cls, argument: str, message: str) -> ArgumentError:
        return cls(message, argument=argument, code=ErrorCode.NOT_FOUND)


def _first_quoted_name(message: str) -> str | None:
    match = re.search(r"`(\w+)`", message)
    return match.group(1) if match else None
