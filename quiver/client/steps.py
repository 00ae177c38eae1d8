"""A client method written once for both clients: a *plan*, a generator that yields the steps
it needs done (a GraphQL operation, an HTTP request, a download, work for a thread) and is sent
back each answer. ``Client`` performs the steps as blocking calls, ``AsyncClient`` awaits them;
what to ask and what to make of the answers lives in the plan, once."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from quiver.client.operations import Operation
from quiver.client.types import Json, Page

if TYPE_CHECKING:
    from quiver.client.client import Client

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Request:
    """One HTTP request to the server (or a presigned URL), retried on 429/5xx; answered with
    the ``httpx.Response``."""

    method: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Save:
    """Stream a GET of ``url`` into ``target`` through ``target.incomplete``, so no
    half-written file is ever left under the real name; answered with ``target``. No
    ``params`` keeps the URL's own query (httpx replaces it with even an empty mapping,
    and a presigned URL's query is its signature)."""

    url: str
    target: Path
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Offload(Generic[T]):
    """Work that blocks (file system, parsing Parquet): the async client runs it in a thread."""

    work: Callable[[], T]


@dataclass(frozen=True)
class WithClient(Generic[T]):
    """Work written against the sync ``Client`` (resumable tus uploads, push, pull): the async
    client runs it in a thread with a sync client of its own."""

    work: Callable[[Client], T]


Step: TypeAlias = Operation[Any] | Request | Save | Offload[Any] | WithClient[Any]
Plan: TypeAlias = Generator[Step, Any, T]


@dataclass(frozen=True)
class Paging(Generic[T]):
    """A connection to iterate: the operation for the page after a cursor."""

    page: Callable[[str | None], Operation[Page[T]]]


def ready(value: T) -> Plan[T]:
    """A plan of no steps, for a method that needs to ask nothing before it answers."""
    yield from ()
    return value


def each(operation: Operation[Page[Json]], build: Callable[[Json], U]) -> Operation[Page[U]]:
    """``operation`` with every node of its page built by ``build``."""

    def parse(data: Json) -> Page[U]:
        page = operation.parse(data)
        items = [build(item) for item in page.items]
        return Page(items, page.end_cursor, page.has_next_page, page.total_count)

    return Operation(operation.query, operation.variables, parse)


def find(paging: Paging[T], wanted: Callable[[T], bool]) -> Plan[T | None]:
    """The first item of a connection that is ``wanted``, reading no further page than needed."""
    after: str | None = None
    while True:
        page: Page[T] = yield paging.page(after)
        for item in page.items:
            if wanted(item):
                return item
        if not page.has_next_page:
            return None
        after = page.end_cursor
