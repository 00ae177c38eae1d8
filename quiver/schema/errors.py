"""``UserError``: what a mutation reports when the caller can fix the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from quiver.resolvers.errors import ErrorCode, Refused

strawberry.enum(ErrorCode, name="UserErrorCode", description="Why a mutation refused the request.")


@strawberry.type(description="A problem with the request that the caller can fix.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "name"]; null when '
        "the problem concerns the request as a whole."
    )
    message: str = strawberry.field(description="What is wrong, in words for people.")
    code: ErrorCode = strawberry.field(description="What is wrong, for programs.")


def user_errors(refusal: Refused) -> list[UserError]:
    return [
        UserError(
            field=list(p.field) if p.field is not None else None, message=p.message, code=p.code
        )
        for p in refusal.problems
    ]


P = TypeVar("P")


async def payload(
    make: Callable[..., P], operation: Callable[[], Awaitable[dict[str, object]]]
) -> P:
    """Run ``operation`` and build its payload, turning a refusal into ``userErrors``."""
    try:
        values = await operation()
    except Refused as refusal:
        return make(user_errors=user_errors(refusal))
    return make(**values, user_errors=[])
