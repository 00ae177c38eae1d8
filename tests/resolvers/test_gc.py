"""The garbage collector deletes only bytes nothing references, and spares fresh ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import owned_dataset

from quiver.models import Blob, Version, VersionEntry
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.files import put_file
from quiver.resolvers.gc import collect_garbage
from quiver.resolvers.tables import TableFile, Tables
from quiver.storage import LocalStorage
from quiver.storage.blobs import blob_key

pytestmark = pytest.mark.anyio

LATER = datetime.now(UTC) + timedelta(hours=2)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "blobs")


async def test_unreferenced_blobs_go_and_referenced_ones_stay(
    db: str, storage: LocalStorage
) -> None:
    dataset = await owned_dataset()
    kept = await store_blob(storage, chunks(b"kept"))
    await put_file(dataset.id, "kept.txt", kept, content_type="text/plain")
    orphan = await store_blob(storage, chunks(b"orphan bytes"))

    report = await collect_garbage(storage, now=LATER)

    assert (report.blobs_deleted, report.bytes_freed) == (1, len(b"orphan bytes"))
    assert await storage.exists(blob_key(kept.sha256))
    assert not await storage.exists(blob_key(orphan.sha256))
    assert await Blob.filter(sha256=orphan.sha256).count() == 0


async def test_blobs_touched_within_the_grace_period_are_spared(
    db: str, storage: LocalStorage
) -> None:
    in_flight = await store_blob(storage, chunks(b"an upload about to be referenced"))

    report = await collect_garbage(storage, grace=timedelta(hours=1))

    assert report.blobs_deleted == 0
    assert await storage.exists(blob_key(in_flight.sha256))


async def test_blobs_named_by_a_version_stay_after_the_file_is_gone(
    db: str, storage: LocalStorage
) -> None:
    dataset = await owned_dataset()
    blob = await store_blob(storage, chunks(b"versioned"))
    version = await Version.create(dataset_id=dataset.id, number=1, name="v1")
    await VersionEntry.create(
        version_id=version.id,
        path="a",
        blob_id=blob.sha256,
        size=9,
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )

    report = await collect_garbage(storage, now=LATER)

    assert report.blobs_deleted == 0
    assert await storage.exists(blob_key(blob.sha256))


async def test_stale_staging_bytes_and_stray_blobs_are_swept(
    db: str, storage: LocalStorage
) -> None:
    await storage.put("staging/abandoned", chunks(b"half an upload"))
    stray = "ab" * 32
    await storage.put(blob_key(stray), chunks(b"bytes without a row"))

    fresh = await collect_garbage(storage)
    assert (fresh.staging_deleted, fresh.strays_deleted) == (0, 0)

    report = await collect_garbage(storage, now=LATER)

    assert (report.staging_deleted, report.strays_deleted) == (1, 1)
    assert not await storage.exists("staging/abandoned")
    assert not await storage.exists(blob_key(stray))


async def test_a_dry_run_reports_and_deletes_nothing(db: str, storage: LocalStorage) -> None:
    orphan = await store_blob(storage, chunks(b"orphan"))

    report = await collect_garbage(storage, now=LATER, dry_run=True)

    assert report.blobs_deleted == 1
    assert await storage.exists(blob_key(orphan.sha256))
    assert await Blob.exists(sha256=orphan.sha256)


async def test_parquet_forms_of_collected_tables_go_with_their_bytes(
    db: str, storage: LocalStorage, tmp_path: Path
) -> None:
    dataset = await owned_dataset()
    kept = await store_blob(storage, chunks(b"a,b\n1,2\n"))
    await put_file(dataset.id, "kept.csv", kept, content_type="text/csv")
    gone = await store_blob(storage, chunks(b"a,b\n3,4\n"))
    tables = Tables(storage, tmp_path / "cache")
    for blob in (kept, gone):
        await tables.parquet_form(TableFile("t.csv", blob.sha256, "csv", blob.size))
    forms = tmp_path / "cache" / "tables"

    report = await collect_garbage(storage, now=LATER, cache_dir=tmp_path / "cache")

    assert report.cached_tables_deleted == 1
    assert [form.name.split(".")[0] for form in forms.glob("*/*.parquet")] == [kept.sha256]
