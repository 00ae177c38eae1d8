"""The Relay ``Node`` interface and ``node(id)`` lookup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from tortoise.models import Model

from quiver.context import Context, Info
from quiver.ids import decode_global_id, encode_global_id, global_id_type


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global ID of the object.")


def global_id_resolver(type_name: str) -> Callable[[Any], strawberry.ID]:
    """The resolver of ``id`` for a type whose objects are rows with a numeric ``id``."""

    def resolve(root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(encode_global_id(type_name, root.id))

    return resolve


NodeLoader = Callable[[Context, int], Awaitable[Model | None]]
_LOADERS: dict[str, NodeLoader] = {}


def node_loader(type_name: str) -> Callable[[NodeLoader], NodeLoader]:
    """Register how ``node(id)`` fetches objects of ``type_name``."""

    def register(load: NodeLoader) -> NodeLoader:
        _LOADERS[type_name] = load
        return load

    return register


async def resolve_node(info: Info, id: strawberry.ID) -> Model | None:
    type_name = global_id_type(id)
    load = _LOADERS.get(type_name or "")
    pk = decode_global_id(id, type_name)
    if load is None or pk is None:
        return None
    return await load(info.context, pk)
