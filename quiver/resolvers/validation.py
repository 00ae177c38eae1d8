"""Checks on what callers send, each reporting the field it concerns."""

from __future__ import annotations

import re
from collections.abc import Iterable

from quiver.resolvers.errors import ErrorCode, FieldPath, Problem, Refused

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,126}")
MAX_DESCRIPTION = 10_000
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_SHORT_TEXT = 255


def check_name(name: str, field: FieldPath) -> list[Problem]:
    if NAME_PATTERN.fullmatch(name):
        return []
    if not 1 <= len(name) <= 127:
        message = "Name must be 1 to 127 characters long"
    else:
        message = (
            "Name must start with a letter or digit and contain only letters, digits, "
            "'_', '-' and '.'"
        )
    return [Problem(field, message, ErrorCode.INVALID)]


def check_description(description: str | None, field: FieldPath) -> list[Problem]:
    if description is not None and len(description) > MAX_DESCRIPTION:
        return [
            Problem(
                field,
                f"Description must be at most {MAX_DESCRIPTION} characters",
                ErrorCode.INVALID,
            )
        ]
    return []


def check_short_text(
    value: str | None, field: FieldPath, label: str, limit: int = MAX_SHORT_TEXT
) -> list[Problem]:
    if value is not None and len(value) > limit:
        return [Problem(field, f"{label} must be at most {limit} characters", ErrorCode.INVALID)]
    return []


def normalize_tags(tags: Iterable[str], field: FieldPath) -> tuple[list[str], list[Problem]]:
    """Trimmed, lower-cased, de-duplicated tags in the order given, with any problems."""
    normalized: list[str] = []
    problems: list[Problem] = []
    for index, raw in enumerate(tags):
        tag = raw.strip().lower()
        if not tag:
            problems.append(
                Problem((*field, str(index)), "Tags cannot be empty", ErrorCode.INVALID)
            )
        elif len(tag) > MAX_TAG_LENGTH:
            message = f"Tags must be at most {MAX_TAG_LENGTH} characters"
            problems.append(Problem((*field, str(index)), message, ErrorCode.INVALID))
        elif tag not in normalized:
            normalized.append(tag)
    if len(normalized) > MAX_TAGS:
        problems.append(Problem(field, f"At most {MAX_TAGS} tags are allowed", ErrorCode.INVALID))
    return normalized, problems


def raise_if_any(problems: list[Problem]) -> None:
    if problems:
        raise Refused(problems)
