"""Schema extensions: limits on what one request may ask, and masking of internal faults."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, Visitor, visit
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document
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


# What no database column holds (PostgreSQL text and JSON refuse NUL) and UTF-8 cannot encode.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text_at(value: Any, path: str) -> str | None:
    """Where in a JSON value (keys included) a string holds NUL or an unpaired surrogate."""
    if isinstance(value, str):
        return path if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if UNSTORABLE.search(str(key)):
                return f"{path} (a key)"
            if (found := unstorable_text_at(item, f"{path}.{key}")) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := unstorable_text_at(item, f"{path}.{index}")) is not None:
                return found
    return None


class _StringLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        self.values.append(node.value)


def _string_literals(document: DocumentNode) -> Iterator[str]:
    visitor = _StringLiterals()
    visit(document, visitor)
    return iter(visitor.values)


class RefuseUnstorableText(SchemaExtension):
    """NUL and unpaired surrogates, in any variable or string literal, refuse the whole
    request as INVALID before it runs: one check for every string argument, input field
    and JSON value, so no operation stores on SQLite what PostgreSQL refuses."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        where = unstorable_text_at(context.variables or {}, "$")
        if (
            where is None
            and document is not None
            and any(UNSTORABLE.search(value) for value in _string_literals(document))
        ):
            where = "a string in the query"
        if where is not None:
            where = where.replace("$.", "$", 1)
            # Set before validation runs, so it is skipped and the request ends here.
            context.pre_execution_errors = [
                GraphQLError(
                    f"Text cannot hold NUL (U+0000) or unpaired surrogates (U+D800-U+DFFF), "
                    f"as {where} does",
                    extensions={"code": ErrorCode.INVALID.value},
                )
            ]
        yield


# Distinct query texts whose parsed and validated documents one schema keeps, and their
# characters at most: a parsed document takes ~100 bytes a character (a query at the token
# limit, ~6 MB), so the bound is on text, and a long text is not kept at all.
DOCUMENT_CACHE_SIZE = 256
DOCUMENT_CACHE_CHARACTERS = 256 * 1024
LONGEST_CACHED_QUERY = DOCUMENT_CACHE_CHARACTERS // 8


@dataclass
class _Checked:
    document: DocumentNode
    # What validation said (empty: valid); None until validation has run.
    errors: list[GraphQLError] | None = None


class DocumentCache:
    """Parsed and validated documents by query text, least recently used dropped first.

    Clients send the same few operations again and again; parsing and validating one took
    a quarter of a small request's time. Validation depends only on the text, the schema
    and its rules, which are fixed per schema, so one cache belongs to one schema. Bounded
    in entries and in characters, so unique texts from a caller only push out others
    (~25 MB of documents at most).
    """

    def __init__(
        self, size: int = DOCUMENT_CACHE_SIZE, characters: int = DOCUMENT_CACHE_CHARACTERS
    ) -> None:
        self.size = size
        self.characters = characters
        self._held = 0
        self._entries: OrderedDict[str, _Checked] = OrderedDict()

    def get(self, query: str) -> _Checked | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> _Checked | None:
        """The entry now kept for ``query``; None for a text too long to keep."""
        if len(query) > min(LONGEST_CACHED_QUERY, self.characters):
            return None
        if (entry := self._entries.get(query)) is not None:
            return entry  # another request parsed the same text meanwhile
        entry = self._entries[query] = _Checked(document)
        self._held += len(query)
        while len(self._entries) > self.size or self._held > self.characters:
            dropped, _ = self._entries.popitem(last=False)
            self._held -= len(dropped)
        return entry


class CachedDocuments(SchemaExtension):
    """Reuse a query text's parsed document and its validation result (``DocumentCache``).

    Runs after ``RefuseUnstorableText``: a request that extension refused (for its
    variables) is not validated, and its refusal is not kept (the text may be fine)."""

    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache
        self._entry: _Checked | None = None  # this request's, once parsed

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        self._entry = self.cache.get(query) if query is not None else None
        if self._entry is not None:
            context.graphql_document = self._entry.document  # strawberry then skips parsing
        yield
        if self._entry is None and query is not None and context.graphql_document is not None:
            self._entry = self.cache.put(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry, document = self._entry, context.graphql_document
        if (
            context.pre_execution_errors is None
            and entry is not None
            and entry.document is document
        ):
            if entry.errors is None:
                entry.errors = validate_document(
                    context.schema._schema, entry.document, context.validation_rules
                )
            # Set before strawberry's own validation, which is then skipped.
            context.pre_execution_errors = list(entry.errors)
        yield


def limit_extensions(
    *, max_depth: int, max_aliases: int, max_tokens: int
) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    """Factories for the per-request extensions that bound a request's cost, and the
    cache of checked documents that keeps bounding cheap."""
    documents = DocumentCache()

    def depth() -> SchemaExtension:
        return QueryDepthLimiter(max_depth=max_depth)

    def aliases() -> SchemaExtension:
        return MaxAliasesLimiter(max_alias_count=max_aliases)

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    def cached() -> SchemaExtension:
        return CachedDocuments(documents)

    return [tokens, RefuseUnstorableText, depth, aliases, cached, MaskInternalErrors]
