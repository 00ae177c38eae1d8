"""Labels and samples, downloads and exports through quiver.client.AsyncClient against a live
server: what the async client lacked before it ran the sync client's plans."""

from __future__ import annotations

import csv
from pathlib import Path

import anyio
import pytest
from support import LiveServer, box, png

from quiver.client import AsyncClient, QuiverError

pytestmark = pytest.mark.anyio
IMAGES = [f"images/img{index}.png" for index in range(4)]


async def test_async_labels_samples_and_annotations_are_made_and_filtered(
    client_env: LiveServer,
) -> None:
    async with AsyncClient() as client:
        await client.create_dataset("async-pets", type="IMAGE")
        for path in IMAGES:
            await client.upload_file("async-pets", path, png(16, 12))
        made = await client.create_labels(
            "async-pets", ["cat", {"name": "dog", "kind": "BOUNDING_BOX"}]
        )
        assert [(label.name, label.kind) for label in made] == [
            ("cat", "CLASSIFICATION"),
            ("dog", "BOUNDING_BOX"),
        ]
        # Every file at once answers none of the samples it made: they are listed instead.
        assert await client.add_samples("async-pets", all_files=True, metadata={"split": "a"}) == []
        ids = {sample.path or "": sample.id async for sample in client.samples("async-pets")}
        assert sorted(ids) == IMAGES
        again = await client.add_samples("async-pets", [IMAGES[0]])
        assert [sample.id for sample in again] == [ids[IMAGES[0]]]
        annotated = await client.annotate(
            "async-pets",
            {
                ids[IMAGES[0]]: [{"label": "cat"}],
                ids[IMAGES[1]]: [{"label": "dog", "geometry": box(1, 1, 4, 4)}],
                ids[IMAGES[2]]: [{"label": "cat"}, {"label": "dog", "geometry": box(0, 0, 2, 2)}],
            },
        )
        assert sorted(len(sample.annotations) for sample in annotated) == [1, 1, 2]
        reviewed = await client.update_samples(
            [ids[IMAGES[0]], ids[IMAGES[2]]], status="reviewed", metadata={"split": "val"}
        )
        assert {sample.status for sample in reviewed} == {"REVIEWED"}
        await client.create_version("async-pets", "labelled")

        async def paths(**given: object) -> list[str]:
            found = client.samples("async-pets@v1", **given)  # type: ignore[arg-type]
            return sorted([sample.path or "" async for sample in found])

        assert await paths(labels=["cat"]) == [IMAGES[0], IMAGES[2]]
        assert await paths(labels=["cat", "dog"], label_match="ALL") == [IMAGES[2]]
        assert await paths(labels=["cat", "dog"], label_match="NONE") == [IMAGES[3]]
        assert await paths(status="REVIEWED", labels=["dog"]) == [IMAGES[2]]
        assert await paths(metadata={"split": "a"}) == [IMAGES[1], IMAGES[3]]
        first = [s async for s in client.samples("async-pets@v1", prefix=IMAGES[1])]
        assert [a.label for a in first[0].annotations] == ["dog"]
        assert first[0].annotations[0].geometry == box(1, 1, 4, 4)
        assert [label.name for label in await client.labels("async-pets@v1")] == ["cat", "dog"]

        with pytest.raises(QuiverError) as unknown:
            await paths(labels=["horse"])
        assert unknown.value.code == "NOT_FOUND"
        with pytest.raises(QuiverError) as no_label:
            await client.annotate("async-pets", {ids[IMAGES[3]]: [{"label": "horse"}]})
        assert no_label.value.code == "NOT_FOUND"


async def test_async_downloads_and_exports_write_whole_files(
    client_env: LiveServer, tmp_path: Path
) -> None:
    async with AsyncClient() as client:
        await client.create_dataset("async-table", type="TABULAR")
        await client.upload_file("async-table", "t.csv", b"a,b\n1,2\n3,4\n")
        await client.create_version("async-table", "first")

        saved = await client.download_file("async-table", "t.csv", tmp_path)
        assert saved == tmp_path / "t.csv"
        assert saved.read_bytes() == b"a,b\n1,2\n3,4\n"
        exported = await client.export("async-table@v1", tmp_path / "t.out.csv", format="csv")
        assert list(csv.reader(exported.read_text().splitlines())) == [
            ["a", "b"],
            ["1", "2"],
            ["3", "4"],
        ]
        assert await client.export_bytes("async-table@v1", format="csv") == exported.read_bytes()
        assert sorted([p.name async for p in anyio.Path(tmp_path).iterdir()]) == [
            "t.csv",
            "t.out.csv",
        ]

        with pytest.raises(QuiverError) as bad_format:
            await client.export("async-table@v1", tmp_path / "x", format="json")
        assert bad_format.value.code == "INVALID"
        with pytest.raises(QuiverError) as missing:
            await client.download_file("async-table", "nope.csv", tmp_path)
        assert missing.value.code == "NOT_FOUND"
        assert sorted([p.name async for p in anyio.Path(tmp_path).iterdir()]) == [
            "t.csv",
            "t.out.csv",
        ]
