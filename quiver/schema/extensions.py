"""Schema extensions: limits on what one request may ask, and masking of internal faults."""

from __future__ import annotations

import logging
from collections.abc import Callable

from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types import ExecutionContext

from quiver.resolvers.errors import ArgumentError, ErrorCode

logger = logging.getLogger("quiver.errors")

INTERNAL_ERROR = "Internal server error"


def is_fault(error: GraphQLError) -> bool:
    """Whether an error is an internal fault to hide, rather than a readable one."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError | ArgumentError):
        return False
    # Scalars and input coercion raise ValueError/TypeError for bad client values.
    return not (error.path is None and isinstance(original, ValueError | TypeError))


class MaskInternalErrors(MaskErrors):
    """Replace internal faults with a generic message that carries the request id.

    The full error is logged with the same request id, so an operator can find it.
    """

    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(should_mask_error=is_fault, error_message=INTERNAL_ERROR)
        if execution_context is not None:
            self.execution_context = execution_context

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            # Every error left is the caller's to fix (a malformed or invalid document, a
            # cost limit, a value that does not coerce): one code, so clients can tell.
            if "code" not in (error.extensions or {}):
                error.extensions = {**(error.extensions or {}), "code": ErrorCode.INVALID.value}
        return processed

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        logger.error(
            "Internal error (request %s) at %s",
            request_id,
            error.path,
            exc_info=error.original_error,
        )
        return GraphQLError(
            message=INTERNAL_ERROR,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


def limit_extensions(
    *, max_depth: int, max_aliases: int, max_tokens: int
) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    """Factories for the per-request extensions that bound a request's cost."""

    def depth() -> SchemaExtension:
        return QueryDepthLimiter(max_depth=max_depth)

    def aliases() -> SchemaExtension:
        return MaxAliasesLimiter(max_alias_count=max_aliases)

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    return [tokens, depth, aliases, MaskInternalErrors]
