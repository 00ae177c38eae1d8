"""put_many: small objects stored together, byte for byte, on every storage adapter."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from quiver.storage import Storage
from quiver.storage.batch import put_many

pytestmark = pytest.mark.anyio


async def read_all(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.open(key)])


async def test_every_object_of_a_batch_is_stored_and_replaces_what_was_there(
    storage: Storage,
) -> None:
    objects = {f"blobs/{index:02x}/{index}": os.urandom(index * 7) for index in range(40)}
    await storage.put("blobs/00/0", _chunks(b"old bytes"))
    await put_many(storage, objects)
    for key, data in objects.items():
        assert await read_all(storage, key) == data
    listed = {meta.key async for meta in storage.list("blobs/")}
    assert listed == set(objects)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
