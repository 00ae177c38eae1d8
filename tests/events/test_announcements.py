"""What resolvers and jobs announce on the bus about a dataset, in process (each database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from support import Api, dataset_with, put, snapshot

from quiver.config import Settings
from quiver.events import Event, current_bus
from quiver.ids import decode_global_id
from quiver.jobs.runner import Runner
from quiver.storage import storage_from_url

pytestmark = pytest.mark.anyio

MOVE = """mutation($d: ID!) { moveFile(input: {datasetId: $d, path: "a.txt",
  newPath: "b.txt"}) { userErrors { code } } }"""
TAG = """mutation($d: ID!) { setFileMetadata(input: {datasetId: $d, path: "b.txt",
  tags: ["x"]}) { userErrors { code } } }"""
DELETE = """mutation($d: ID!) { deleteFiles(input: {datasetId: $d, paths: ["b.txt", "no"]}) {
  userErrors { code } } }"""
RESTORE = """mutation($v: ID!) { restoreVersion(input: {versionId: $v}) { userErrors { code } } }"""
CLEAR = """mutation($d: ID!) { clearDataset(input: {id: $d}) { userErrors { code } } }"""
START = """mutation($d: ID!) { startJob(input: {kind: CONVERT, datasetId: $d,
  params: {path: "t.csv"}}) { job { id } userErrors { field message code } } }"""

Heard = list[tuple[str, str | None]]


@asynccontextmanager
async def hearing(dataset_id: str) -> AsyncIterator[Heard]:
    """What the dataset's subscribers hear during the block: (kind, path) in order."""
    heard: Heard = []
    pk = decode_global_id(dataset_id, "Dataset")
    assert pk is not None
    async with current_bus().subscribe(("dataset", pk)) as subscription:
        yield heard
        while (item := await subscription.get(within=0.05)) is not None:
            assert isinstance(item, Event)
            heard.append((item.kind, item.path))


async def test_file_and_version_changes_are_announced_after_they_are_made(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset = await dataset_with(api, client, admin_token, "told", {})
    async with hearing(dataset) as heard:
        await put(client, admin_token, dataset, "a.txt", b"a")
        version = await snapshot(api, admin_token, dataset)
        await api.mutate(MOVE, {"d": dataset}, token=admin_token)
        await api.mutate(TAG, {"d": dataset}, token=admin_token)
        await api.mutate(DELETE, {"d": dataset}, token=admin_token)
        await api.mutate(RESTORE, {"v": version["id"]}, token=admin_token)
        await api.mutate(CLEAR, {"d": dataset}, token=admin_token)
    assert heard == [
        ("FILE_ADDED", "a.txt"),
        ("VERSION_CREATED", None),
        ("FILE_REMOVED", "a.txt"),
        ("FILE_ADDED", "b.txt"),
        ("FILE_UPDATED", "b.txt"),
        ("FILE_REMOVED", "b.txt"),
        ("DATASET_UPDATED", None),
        ("DATASET_UPDATED", None),
    ]


async def test_a_job_that_adds_a_file_announces_it(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset = await dataset_with(api, client, admin_token, "converted", {"t.csv": b"a,b\n1,2\n"})
    storage = storage_from_url(settings.storage_url)
    try:
        async with hearing(dataset) as heard:
            await api.mutate(START, {"d": dataset}, token=admin_token)
            await Runner(settings, storage, concurrency=1).run_until_idle()
    finally:
        await storage.close()
    assert heard == [("FILE_ADDED", "t.parquet"), ("VERSION_CREATED", None)]
