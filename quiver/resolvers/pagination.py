"""Keyset pagination in SQL: a page is ``WHERE (key, id) after cursor ORDER BY key, id LIMIT n``."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import AwaitableQuery, QuerySet

from quiver.resolvers.errors import ArgumentError
from quiver.resolvers.sql import connection

M = TypeVar("M", bound=Model)
Counter = Callable[[], Awaitable[int]]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    count: Counter


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


def _after(
    queryset: QuerySet[M], *, key: str, descending: bool, after: str | None, pk: str
) -> QuerySet[M]:
    """``queryset`` narrowed to the rows that follow the cursor ``after``."""
    if after is None:
        return queryset
    key_type = queryset.model._meta.fields_map[key].field_type
    after_key, after_pk = decode_cursor(after, key_type)
    op = "lt" if descending else "gt"
    return queryset.filter(
        Q(**{f"{key}__{op}": after_key}) | Q(**{key: after_key, f"{pk}__{op}": after_pk})
    )


def _page(
    rows: list[M], *, size: int, key: str, pk: str, after: str | None, count: Counter
) -> Page[M]:
    items = rows[:size]
    return Page(
        items=items,
        cursors=[encode_cursor(getattr(item, key), getattr(item, pk)) for item in items],
        has_next_page=len(rows) > size,
        has_previous_page=after is not None,
        count=count,
    )


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
    filtered = _after(queryset, key=key, descending=descending, after=after, pk=pk)
    prefix = "-" if descending else ""
    rows = await filtered.order_by(f"{prefix}{key}", f"{prefix}{pk}").limit(size + 1)
    return _page(rows, size=size, key=key, pk=pk, after=after, count=queryset.count)


async def keyset_pages(
    queryset: QuerySet[M],
    *,
    parent: str,
    parents: Sequence[int],
    key: str,
    descending: bool,
    first: int | None,
    after: str | None,
    count: Callable[[int], Awaitable[int]],
    pk: str = "id",
) -> list[Page[M]]:
    """The same page of ``queryset`` under each of ``parents`` (a nested connection under a
    list) in two queries, whatever the number of parents: a window function numbers each
    parent's rows in ``(key, pk)`` order and keeps the first ``first + 1``; ``count(parent)``
    gives each page's lazy total (a DataLoader's ``load``, so totals are batched too)."""
    size = page_size(first)
    filtered = _after(queryset, key=key, descending=descending, after=after, pk=pk)
    # ``dict.fromkeys``: a list may be ordered by its pk alone (``key`` is ``pk``).
    columns = dict.fromkeys((pk, parent, key))
    ranked = filtered.filter(**{f"{parent}__in": list(parents)}).values(*columns)
    inner, params = parameterized(ranked)
    order = "DESC" if descending else "ASC"
    statement = (
        f'SELECT r."{pk}" AS pk FROM (SELECT q."{pk}", q."{parent}", ROW_NUMBER() OVER '
        f'(PARTITION BY q."{parent}" ORDER BY q."{key}" {order}, q."{pk}" {order}) AS rn '
        f'FROM ({inner}) AS q) AS r WHERE r.rn <= {size + 1} ORDER BY r."{parent}", r.rn'
    )
    ids = [row["pk"] for row in await connection().execute_query_dict(statement, params)]
    by_id = {getattr(row, pk): row for row in await queryset.model.filter(**{f"{pk}__in": ids})}
    grouped: dict[int, list[M]] = {parent_pk: [] for parent_pk in parents}
    for row_id in ids:  # in (parent, rank) order, as the database sorts keys
        row = by_id[row_id]
        grouped[getattr(row, parent)].append(row)
    return [
        _page(grouped[p], size=size, key=key, pk=pk, after=after, count=functools.partial(count, p))
        for p in parents
    ]


async def counts_by_parent(queryset: QuerySet[M], *, parent: str, parents: list[int]) -> list[int]:
    """How many rows of ``queryset`` each parent has, in one grouped query."""
    rows = (
        await queryset.filter(**{f"{parent}__in": parents})
        .group_by(parent)
        .annotate(n=Count("id"))
        .values(parent, "n")
    )
    counts = {row[parent]: row["n"] for row in rows}
    return [counts.get(p, 0) for p in parents]


def parameterized(query: AwaitableQuery[Any]) -> tuple[str, list[Any]]:
    """The SQL and parameters of a queryset, in the current connection's dialect."""
    query.sql()  # builds ``query.query`` for the connection it would run on
    statement, params = query.query.get_parameterized_sql()
    return statement, list(params)
