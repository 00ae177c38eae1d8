"""Upload operations without HTTP: who finds an upload, creating one, completing it."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest

from quiver.auth import ANONYMOUS, Viewer, create_user, viewer_for_user
from quiver.config import Settings
from quiver.ids import encode_global_id
from quiver.models import DatasetFile, Upload
from quiver.resolvers.datasets import create_dataset
from quiver.resolvers.errors import ErrorCode, Refused
from quiver.resolvers.upload_partials import locked_partial, partial_path
from quiver.resolvers.uploads import complete_upload, create_upload, find_upload
from quiver.storage import storage_from_url

pytestmark = pytest.mark.anyio


async def admin_and_dataset() -> tuple[Viewer, int]:
    admin = await viewer_for_user(await create_user("admin", is_admin=True))
    dataset = await create_dataset(admin, name="uploads")
    return admin, dataset.id


async def refusal_of_find(viewer: Viewer, upload_id: str) -> tuple[ErrorCode, str]:
    with pytest.raises(Refused) as refused:
        await find_upload(viewer, upload_id, ("input", "uploadId"))
    problem = refused.value.problems[0]
    assert problem.field == ("input", "uploadId")
    return problem.code, problem.message


async def test_only_the_uploader_and_admins_find_an_upload(settings: Settings) -> None:
    admin, dataset_pk = await admin_and_dataset()
    owner = await viewer_for_user(await create_user("owner"))
    other = await viewer_for_user(await create_user("other"))
    upload = await Upload.create(
        id=os.urandom(16).hex(),
        user_id=owner.user_id,
        dataset_id=dataset_pk,
        path="a.bin",
        length=3,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    absent = (ErrorCode.NOT_FOUND, "No upload with this id")

    assert (await find_upload(owner, upload.id)).id == upload.id
    assert (await find_upload(admin, upload.id)).id == upload.id
    # Someone else's upload is exactly as absent as one that never existed.
    assert await refusal_of_find(other, upload.id) == absent
    assert await refusal_of_find(ANONYMOUS, upload.id) == absent
    assert await refusal_of_find(owner, os.urandom(16).hex()) == absent
    assert await refusal_of_find(owner, "../not an upload id") == absent


async def test_an_upload_over_the_size_limit_is_refused_before_anything_is_kept(
    settings: Settings,
) -> None:
    admin, dataset_pk = await admin_and_dataset()

    with pytest.raises(Refused) as refused:
        await create_upload(
            admin,
            Settings(data_dir=settings.data_dir, max_upload_size=10),
            dataset_id=encode_global_id("Dataset", dataset_pk),
            path="big.bin",
            length=11,
        )

    assert refused.value.problems[0].code == ErrorCode.TOO_LARGE
    assert "10 bytes" in refused.value.problems[0].message
    assert await Upload.all().count() == 0
    assert not settings.uploads_dir.exists()


async def test_a_completed_upload_hashes_its_bytes_and_becomes_a_file(
    settings: Settings,
) -> None:
    admin, dataset_pk = await admin_and_dataset()
    storage = storage_from_url(settings.storage_url)
    upload = await create_upload(
        admin,
        settings,
        dataset_id=encode_global_id("Dataset", dataset_pk),
        path="data/w.csv",
        length=8,
    )
    partial = partial_path(settings, upload.id)
    assert (upload.content_type, partial.read_bytes()) == ("text/csv", b"")
    partial.write_bytes(b"a,b\n1,2\n")

    async with locked_partial(partial) as descriptor:
        done = await complete_upload(admin, storage, settings, upload, descriptor)

    sha256 = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    file = await DatasetFile.get(dataset_id=dataset_pk, path="data/w.csv")
    assert (file.blob_id, file.size, file.content_type) == (sha256, 8, "text/csv")
    assert (done.blob_id, done.file_id, done.offset) == (sha256, file.id, 8)
    assert done.completed_at is not None
    assert not partial.exists()
    await storage.close()
