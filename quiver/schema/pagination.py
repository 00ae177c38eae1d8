"""Relay connections: ``Connection[T]`` is printed as ``TConnection`` with ``TEdge`` items."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import strawberry

from quiver.resolvers.pagination import Page

T = TypeVar("T")


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item; pass it as `after` for the next page."
    )


@strawberry.type(description="An item in a list, with its cursor.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    cursor: str = strawberry.field(description="Pass as `after` to continue after this one.")


@strawberry.type(description="A page of a list, keyset-paginated in SQL.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    _page: strawberry.Private[Page[Any]]

    @strawberry.field(description="How many items match, over all pages.")
    async def total_count(self) -> int:
        return await self._page.count()


def connection(page: Page[Any]) -> Connection[Any]:
    """A page of rows as a connection; the rows are resolved by the node type's fields."""
    return Connection(
        edges=[
            Edge(node=item, cursor=cursor)
            for item, cursor in zip(page.items, page.cursors, strict=True)
        ],
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        _page=page,
    )
