"""Labels and samples through the client and ``quiver labels``, and pulls narrowed to the
samples matching labels / status / metadata, with their annotations written beside the files
(COCO, YOLO, JSON Lines), against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import LiveServer, box, png
from typer.testing import CliRunner

from quiver.cli import app
from quiver.client import Client, QuiverError

IMAGES = [f"images/img{index}.png" for index in range(6)]


def labelled_pets(client: Client, name: str) -> dict[str, str]:
    """``name``@v1: six images; img0 cat, img1 dog, img2 cat and dog, the rest unlabelled;
    img0 and img2 REVIEWED; img4 and img5 have split=val. Path -> sample ID."""
    client.create_dataset(name, type="IMAGE")
    for index, path in enumerate(IMAGES):
        # Bytes of their own: a pull's count of downloads must not hang on which of two
        # identical files the cache served (a race between its download threads).
        client.upload_file(name, path, png(32, 24, color=(index * 40, 30, 30)))
    made = client.create_labels(
        name, [{"name": "cat", "kind": "BOUNDING_BOX"}, {"name": "dog", "kind": "BOUNDING_BOX"}]
    )
    assert [label.name for label in made] == ["cat", "dog"]
    added = client.add_samples(name, IMAGES, metadata={"split": "a"})
    samples = {s.path or "": s.id for s in added}
    assert set(samples) == set(IMAGES)
    annotated = client.annotate(
        name,
        {
            samples[IMAGES[0]]: [{"label": "cat", "geometry": box(1, 1, 10, 10)}],
            samples[IMAGES[1]]: [{"label": "dog", "geometry": box(2, 2, 8, 8)}],
            samples[IMAGES[2]]: [
                {"label": "cat", "geometry": box(0, 0, 5, 5)},
                {"label": "dog", "geometry": box(10, 10, 5, 5)},
            ],
        },
    )
    assert [len(sample.annotations) for sample in annotated] == [1, 1, 2]
    client.update_samples([samples[IMAGES[0]], samples[IMAGES[2]]], status="REVIEWED")
    client.update_samples([samples[IMAGES[4]], samples[IMAGES[5]]], metadata={"split": "val"})
    client.create_version(name, "labelled")
    return samples


def pulled(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in (directory / "images").iterdir())


def test_samples_are_listed_by_label_status_and_metadata(client_env: LiveServer) -> None:
    with Client() as client:
        labelled_pets(client, "pets")
        assert [label.name for label in client.labels("pets@v1")] == ["cat", "dog"]

        def paths(**given: Any) -> list[str]:
            return sorted(sample.path or "" for sample in client.samples("pets@v1", **given))

        assert paths(labels=["cat"]) == [IMAGES[0], IMAGES[2]]
        assert paths(labels=["cat", "dog"], label_match="ALL") == [IMAGES[2]]
        assert paths(labels=["cat", "dog"], label_match="NONE") == IMAGES[3:]
        assert paths(status="reviewed") == [IMAGES[0], IMAGES[2]]
        assert paths(metadata={"split": "val"}) == IMAGES[4:]
        cat = next(iter(client.samples("pets@v1", labels=["dog"], status="LABELED")))
        assert (cat.path, [a.label for a in cat.annotations]) == (IMAGES[1], ["dog"])
        with pytest.raises(QuiverError) as unknown:
            list(client.samples("pets@v1", labels=["horse"]))
        assert unknown.value.code == "NOT_FOUND"


def test_a_filtered_pull_fetches_only_matching_files_with_their_annotations(
    client_env: LiveServer, tmp_path: Path
) -> None:
    with Client() as client:
        labelled_pets(client, "pets2")
        target = tmp_path / "reviewed-cats"
        report = client.pull(
            "pets2@v1", target, labels=["cat"], status=["REVIEWED"], annotations="jsonl"
        )
        assert (report.files, report.downloaded_files) == (2, 2)
        assert pulled(target) == ["images/img0.png", "images/img2.png"]
        lines = [json.loads(line) for line in (target / "annotations.jsonl").read_text().split()]
        samples = [line for line in lines if "path" in line]
        assert sorted(line["path"] for line in samples) == ["images/img0.png", "images/img2.png"]
        assert sum(len(line["annotations"]) for line in samples) == 3

        coco = tmp_path / "dogs"
        client.pull("pets2@v1", coco, labels=["dog"], annotations="coco")
        document = json.loads((coco / "annotations.coco.json").read_text())
        assert sorted(image["file_name"] for image in document["images"]) == [
            "images/img1.png", "images/img2.png",
        ]  # fmt: skip
        assert len(document["annotations"]) == 3  # img2 has a cat too
        assert {c["name"] for c in document["categories"]} == {"cat", "dog"}

        yolo = tmp_path / "val"
        client.pull("pets2@v1", yolo, metadata={"split": "val"}, status=["UNLABELED"])
        assert pulled(yolo) == ["images/img4.png", "images/img5.png"]
        client.pull("pets2@v1", yolo, labels=["cat"], label_match="NONE", annotations="yolo")
        assert (yolo / "data.yaml").is_file()
        assert sorted(p.name for p in (yolo / "labels").iterdir()) == [
            "img1.txt", "img3.txt", "img4.txt", "img5.txt",
        ]  # fmt: skip
        assert len((yolo / "labels" / "img1.txt").read_text().split("\n")[0].split()) == 5


def test_quiver_labels_and_a_filtered_pull_from_the_command_line(
    client_env: LiveServer, tmp_path: Path
) -> None:
    with Client() as client:
        labelled_pets(client, "pets3")
    cli = CliRunner()
    made = cli.invoke(app, ["labels", "create", "pets3", "bird", "fish", "--kind", "polygon"])
    assert made.exit_code == 0, made.output
    listed = cli.invoke(app, ["labels", "ls", "pets3", "--json"])
    assert {(label["name"], label["kind"]) for label in json.loads(listed.stdout)} == {
        ("cat", "BOUNDING_BOX"), ("dog", "BOUNDING_BOX"), ("bird", "POLYGON"),
        ("fish", "POLYGON"),
    }  # fmt: skip
    again = cli.invoke(app, ["labels", "create", "pets3", "cat"])
    assert again.exit_code == 4, again.output  # CONFLICT: cat exists

    target = tmp_path / "copy"
    done = cli.invoke(
        app,
        ["pull", "pets3@v1", str(target), "--label", "cat", "--status", "REVIEWED",
         "--annotations", "coco"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert pulled(target) == ["images/img0.png", "images/img2.png"]
    assert "annotations.coco.json" in done.stdout
    bad = cli.invoke(app, ["pull", "pets3@v1", str(target), "--status", "DONE"])
    assert bad.exit_code == 2, bad.output
