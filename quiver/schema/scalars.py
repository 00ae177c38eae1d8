"""Custom scalars: ``Long`` for byte sizes and counts past 2^31; ``JSON`` for free metadata."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

Long = NewType("Long", int)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("Long must be an integer")
    return int(value)


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A 64-bit integer, for byte sizes and row counts.",
    )
}

__all__ = ["JSON", "SCALAR_MAP", "Long"]
