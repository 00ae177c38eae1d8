"""Keyset pagination in SQL: a page is ``WHERE (key, id) after cursor ORDER BY key, id LIMIT n``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from quiver.resolvers.errors import ArgumentError

M = TypeVar("M", bound=Model)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise ArgumentError("`first` must not be negative")
    if first > MAX_PAGE_SIZE:
        raise ArgumentError(f"`first` may be at most {MAX_PAGE_SIZE}; page with `after`")
    return first


def encode_cursor(key: Any, pk: Any) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    return base64.urlsafe_b64encode(json.dumps([key, pk]).encode()).decode()


def decode_cursor(cursor: str, key_type: type) -> tuple[Any, int]:
    """The (key, pk) inside a cursor, checked to be of the types the list orders by."""
    invalid = ArgumentError("`after` is not a cursor this list returned")
    try:
        key, pk = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if key_type is datetime:
            key = datetime.fromisoformat(key)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise invalid
    if isinstance(key, bool) or not isinstance(key, key_type):
        raise invalid
    return key, pk


async def keyset_page(
    queryset: QuerySet[M],
    *,
    key: str,
    descending: bool,
    first: int | None,
    after: str | None,
    pk: str = "id",
) -> Page[M]:
    """One page ordered by ``(key, pk)`` (``key`` never null): one query, plus a lazy count."""
    size = page_size(first)
    filtered = queryset
    key_type = queryset.model._meta.fields_map[key].field_type
    if after is not None:
        after_key, after_pk = decode_cursor(after, key_type)
        op = "lt" if descending else "gt"
        filtered = filtered.filter(
            Q(**{f"{key}__{op}": after_key}) | Q(**{key: after_key, f"{pk}__{op}": after_pk})
        )
    prefix = "-" if descending else ""
    rows = await filtered.order_by(f"{prefix}{key}", f"{prefix}{pk}").limit(size + 1)
    items = rows[:size]

    async def count() -> int:
        return await queryset.count()

    return Page(
        items=items,
        cursors=[encode_cursor(getattr(item, key), getattr(item, pk)) for item in items],
        has_next_page=len(rows) > size,
        has_previous_page=after is not None,
        count=count,
    )
