"""The migrated schema enforces what the code relies on, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError

from quiver.auth import create_user
from quiver.models import Blob, Dataset, DatasetFile, Team

pytestmark = pytest.mark.anyio


async def owned_dataset(name: str = "d") -> Dataset:
    user = await create_user("owner")
    team = await Team.get(personal_user_id=user.id)
    return await Dataset.create(name=name, owner_team_id=team.id)


async def test_a_path_holds_one_file_per_dataset(db: str) -> None:
    dataset = await owned_dataset()
    await Blob.create(sha256="a" * 64, size=1)
    await DatasetFile.create(dataset_id=dataset.id, path="x", blob_id="a" * 64, size=1)

    with pytest.raises(IntegrityError):
        await DatasetFile.create(dataset_id=dataset.id, path="x", blob_id="a" * 64, size=1)


async def test_a_team_holds_one_active_dataset_per_name_but_deleted_ones_do_not_count(
    db: str,
) -> None:
    first = await owned_dataset("same")
    with pytest.raises(IntegrityError):
        await Dataset.create(name="same", owner_team_id=first.owner_team_id)

    await Dataset.filter(id=first.id).update(deleted_at=first.created_at)
    again = await Dataset.create(name="same", owner_team_id=first.owner_team_id)
    assert again.id != first.id
