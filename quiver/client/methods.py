"""Client methods made from plans: ``Client.create_dataset = Blocking(Plans.create_dataset)``
gives the sync client a method with the plan's parameters (less ``plans``) that runs it and
returns its result; ``Awaiting`` gives the async client a coroutine; ``BlockingPages`` and
``AwaitingPages`` iterate the connection a plan returns, a page at a time."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from quiver.client.steps import Paging, Plan

if TYPE_CHECKING:
    from typing import Self

    from quiver.client.plans import Plans

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class Runs(Protocol):
    """A client that performs a plan's steps as blocking calls."""

    plans: Plans

    def run(self, plan: Plan[T]) -> T: ...

    def iterate(self, paging: Paging[T]) -> Iterator[T]: ...


class Awaits(Protocol):
    """A client that awaits a plan's steps."""

    plans: Plans

    def run(self, plan: Plan[T]) -> Awaitable[T]: ...

    def iterate(self, paging: Paging[T]) -> AsyncIterator[T]: ...


class _Method(Generic[P, T]):
    def __init__(self, plan: Callable[Concatenate[Plans, P], Plan[T]]) -> None:
        self.plan = plan
        self.__doc__ = plan.__doc__
        signature = inspect.signature(plan)
        self.signature = signature.replace(
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def _named(self, method: Callable[P, R]) -> Callable[P, R]:
        """``method`` as help() and notebooks should show it: the plan's name, docstring and
        parameters (less ``plans``)."""
        method.__name__ = method.__qualname__ = self.name
        method.__doc__ = self.__doc__
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method


class Blocking(_Method[P, T]):
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: Runs, owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, client: Runs | None, owner: type[Any]) -> Self | Callable[P, T]:
        if client is None:
            return self
        plan = self.plan

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return client.run(plan(client.plans, *args, **kwargs))

        return self._named(method)


class BlockingPages(_Method[P, Paging[T]]):
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: Runs, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    def __get__(self, client: Runs | None, owner: type[Any]) -> Self | Callable[P, Iterator[T]]:
        if client is None:
            return self
        plan = self.plan

        def method(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            # What the connection needs (a dataset's ID, …) is looked up now, so a wrong
            # name fails at the call rather than at the first ``next``.
            return client.iterate(client.run(plan(client.plans, *args, **kwargs)))

        return self._named(method)


class Awaiting(_Method[P, T]):
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: Awaits, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: Awaits | None, owner: type[Any]) -> Self | Callable[P, Awaitable[T]]:
        if client is None:
            return self
        plan = self.plan

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client.run(plan(client.plans, *args, **kwargs))

        return self._named(method)


class AwaitingPages(_Method[P, Paging[T]]):
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: Awaits, owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(
        self, client: Awaits | None, owner: type[Any]
    ) -> Self | Callable[P, AsyncIterator[T]]:
        if client is None:
            return self
        plan = self.plan

        async def method(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            paging = await client.run(plan(client.plans, *args, **kwargs))
            async for item in client.iterate(paging):
                yield item

        return self._named(method)
