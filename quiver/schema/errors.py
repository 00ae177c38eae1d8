"""``UserError`` and ``mutation``: refusals a caller can fix become the payload's ``userErrors``."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType

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


def user_errors_field() -> Any:
    """The ``userErrors`` field every payload has: empty when the mutation succeeded."""
    return strawberry.field(default_factory=list, description="Why nothing was done.")


def user_errors(refusal: Refused) -> list[UserError]:
    return [
        UserError(
            field=list(p.field) if p.field is not None else None, message=p.message, code=p.code
        )
        for p in refusal.problems
    ]


class RefusalsAsUserErrors(FieldExtension):
    """Answer a ``Refused`` raised by a mutation with its payload type, holding only
    ``userErrors`` (Saleor's ``BaseMutation.mutate``): every mutation body is typed code
    that returns its payload, and none handles refusals itself.

    Each mutation also starts with empty loader caches, so its payload (and any mutation
    after it in the same request) never shows rows loaded before it changed them."""

    def apply(self, field: StrawberryField) -> None:
        self.field = field

    @cached_property
    def payload_type(self) -> Any:
        payload_type: Any = self.field.type
        return payload_type.resolve_type() if isinstance(payload_type, LazyType) else payload_type

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Any, **kwargs: Any
    ) -> Any:
        info.context.forget_loaded()
        try:
            return await next_(source, info, **kwargs)
        except Refused as refusal:
            return self.payload_type(user_errors=user_errors(refusal), **refusal.payload)


def mutation(*, description: str) -> Any:
    """``@strawberry.mutation`` whose refusals become the payload's ``userErrors``."""
    return strawberry.mutation(description=description, extensions=[RefusalsAsUserErrors()])
