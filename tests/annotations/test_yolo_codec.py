"""YOLO (Ultralytics layout) export and import, no database."""

from __future__ import annotations

import io
import zipfile

import pytest
import yaml

from quiver.annotations import yolo
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    denormalize,
    write_all,
)
from quiver.annotations.report import LossReport


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def _export(
    labels: list[LabelDef], samples: list[SampleRecord]
) -> tuple[dict[str, str], LossReport]:
    report = LossReport()
    writer = yolo.YoloWriter(labels, report)
    data = b"".join(write_all(writer, [samples[:1], samples[1:]]))
    return _unzip(data), report


def _read(
    data: bytes, sizes: dict[str, tuple[int, int]]
) -> tuple[list[LabelDef], list[SampleRecord], LossReport]:
    report = LossReport()
    labels: list[LabelDef] = []
    samples: list[SampleRecord] = []
    for item in yolo.read(io.BytesIO(data), report):
        if isinstance(item, LabelDef):
            labels.append(item)
        else:
            assert item.stem
            path = next(p for p in sizes if p.rsplit(".", 1)[0] == item.path)
            item.path = path
            denormalize(item, *sizes[path])
            samples.append(item)
    return labels, samples, report


def test_label_files_sit_where_ultralytics_looks() -> None:
    assert yolo.label_path("images/train/a.jpg") == "labels/train/a.txt"
    assert yolo.label_path("set/images/val/b.c.png") == "set/labels/val/b.c.txt"
    assert yolo.label_path("flat/c.jpg") == "labels/flat/c.txt"
    assert yolo.image_stem("labels/train/a.txt") == "images/train/a"
    assert yolo.image_stem("set/labels/val/b.c.txt") == "set/images/val/b.c"


def test_detect_export_normalises_centre_boxes() -> None:
    labels = [LabelDef("car", "BOUNDING_BOX"), LabelDef("dog", "BOUNDING_BOX")]
    samples = [
        SampleRecord(
            "images/train/a.jpg",
            200,
            100,
            [AnnotationRecord("dog", {"x": 10, "y": 20, "width": 50, "height": 40})],
        ),
        SampleRecord("images/train/empty.jpg", 64, 64, []),
    ]
    files, report = _export(labels, samples)

    assert files["labels/train/a.txt"] == "1 0.175 0.4 0.25 0.4\n"
    assert files["labels/train/empty.txt"] == ""
    data = yaml.safe_load(files["data.yaml"])
    assert data["names"] == {0: "car", 1: "dog"}
    assert "kpt_shape" not in data
    assert not report


def test_segment_export_writes_polygons_and_reports_what_it_changes() -> None:
    labels = [LabelDef("road", "POLYGON"), LabelDef("car", "BOUNDING_BOX"), LabelDef("day")]
    samples = [
        SampleRecord(
            "images/a.jpg",
            100,
            50,
            [
                AnnotationRecord(
                    "road", {"rings": [[[0, 0], [50, 0], [50, 25]], [[1, 1], [2, 1], [2, 2]]]}
                ),
                AnnotationRecord("car", {"x": 10, "y": 10, "width": 10, "height": 5}),
                AnnotationRecord("day"),
            ],
        )
    ]
    files, report = _export(labels, samples)

    assert files["labels/a.txt"].splitlines() == [
        "0 0 0 0.5 0 0.5 0.5",
        "0 0.01 0.02 0.02 0.02 0.02 0.04",
        "1 0.1 0.2 0.2 0.2 0.2 0.3 0.1 0.3",
    ]
    assert files["losses.txt"].splitlines() == report.lines()
    assert report.lines() == [
        "1 polygon with several rings written as one line per ring",
        "1 box written as a rectangle polygon in a YOLO segment dataset",
        "1 image-level label dropped: a YOLO segment dataset cannot hold it",
    ]


def test_segment_export_traces_masks_into_polygons() -> None:
    labels = [LabelDef("blob", "SEGMENTATION_MASK")]
    # 4 x 4 image, column-major runs: a 2 x 2 square at rows 1-2, columns 1-2
    mask = {"size": [4, 4], "counts": [5, 2, 2, 2, 5]}
    samples = [SampleRecord("images/a.jpg", 4, 4, [AnnotationRecord("blob", mask)])]
    files, report = _export(labels, samples)

    assert files["labels/a.txt"] == "0 0.25 0.25 0.25 0.75 0.75 0.75 0.75 0.25\n"
    assert report.lines() == ["1 mask written as polygons traced along its pixel borders"]


def test_pose_export_writes_box_then_points_and_kpt_shape() -> None:
    skeleton = {"names": ["nose", "tail", "paw"], "edges": [[0, 1]]}
    labels = [LabelDef("cat", "KEYPOINTS", skeleton=skeleton)]
    points = [[10, 10, 2], [0, 0, 0], [30, 20, 1]]
    samples = [
        SampleRecord("images/a.jpg", 100, 100, [AnnotationRecord("cat", {"points": points})])
    ]
    files, _ = _export(labels, samples)

    assert files["labels/a.txt"] == "0 0.2 0.15 0.2 0.1 0.1 0.1 2 0 0 0 0.3 0.2 1\n"
    assert yaml.safe_load(files["data.yaml"])["kpt_shape"] == [3, 3]


def test_round_trip_yolo_to_records_to_yolo_is_identical() -> None:
    original = {
        "data.yaml": "names:\n  0: car\n  1: road\n",
        "labels/train/a.txt": "0 0.4 0.5 0.6 0.5 0.5 0.6\n1 0.1 0.2 0.3 0.2 0.3 0.4\n",
        "labels/train/b.txt": "1 0.05 0.05 0.95 0.05 0.5 0.9\n",
        "labels/val/c.txt": "",
    }
    sizes = {
        "images/train/a.jpg": (640, 480),
        "images/train/b.png": (320, 200),
        "images/val/c.jpg": (10, 10),
    }
    labels, samples, report = _read(_zip(original), sizes)

    assert [(label.name, label.kind) for label in labels] == [
        ("car", "POLYGON"),
        ("road", "POLYGON"),
    ]
    files, export_report = _export(labels, samples)
    assert {k: v for k, v in files.items() if k != "data.yaml"} == {
        "labels/train/a.txt": original["labels/train/a.txt"],
        "labels/train/b.txt": original["labels/train/b.txt"],
        "labels/val/c.txt": "",
    }
    assert yaml.safe_load(files["data.yaml"])["names"] == {0: "car", 1: "road"}
    assert not report
    assert not export_report


def test_boxes_among_polygons_come_back_as_rectangles_with_a_note() -> None:
    original = {
        "data.yaml": "names: [car, road]\n",
        "labels/a.txt": "0 0.5 0.5 0.25 0.125\n1 0.1 0.2 0.3 0.2 0.3 0.4\n",
    }
    labels, samples, _ = _read(_zip(original), {"images/a.jpg": (640, 480)})
    files, report = _export(labels, samples)

    assert [(label.name, label.kind) for label in labels] == [
        ("car", "BOUNDING_BOX"),
        ("road", "POLYGON"),
    ]
    assert (
        files["labels/a.txt"].splitlines()[0]
        == "0 0.375 0.4375 0.625 0.4375 0.625 0.5625 0.375 0.5625"
    )
    assert report.lines() == ["1 box written as a rectangle polygon in a YOLO segment dataset"]


def test_round_trip_of_a_detect_set_keeps_box_lines() -> None:
    original = {
        "dataset/data.yaml": "names: [car, bike]\n",
        "dataset/labels/a.txt": "0 0.5 0.5 0.25 0.125\n1 0.2 0.3 0.1 0.1\n",
    }
    # Paths are relative to the folder of data.yaml (the import's prefix goes before them).
    labels, samples, _ = _read(_zip(original), {"images/a.jpg": (640, 480)})
    files, _ = _export(labels, samples)

    assert files["labels/a.txt"] == original["dataset/labels/a.txt"]
    assert samples[0].annotations[0].geometry == {"x": 240, "y": 210, "width": 160, "height": 60}


def test_round_trip_of_a_pose_set() -> None:
    original = {
        "data.yaml": "names: [person]\nkpt_shape: [3, 3]\n",
        "labels/a.txt": "0 0.5 0.5 0.2 0.4 0.4 0.3 2 0.6 0.7 1 0 0 0\n",
    }
    labels, samples, report = _read(_zip(original), {"images/a.jpg": (100, 200)})
    files, _ = _export(labels, samples)

    assert labels[0].kind == "KEYPOINTS"
    assert samples[0].annotations[0].geometry == {"points": [[40, 60, 2], [60, 140, 1], [0, 0, 0]]}
    assert files["labels/a.txt"] == original["labels/a.txt"]
    assert not report


def test_a_pose_box_other_than_the_points_bounds_is_reported_recomputed() -> None:
    original = {
        "data.yaml": "names: [person]\nkpt_shape: [1, 3]\n",
        "labels/a.txt": "0 0.5 0.5 0.2 0.4 0.45 0.35 2\n",
    }
    _, samples, report = _read(_zip(original), {"images/a.jpg": (100, 200)})

    assert samples[0].annotations[0].geometry == {"points": [[45, 70, 2]]}
    assert report.lines() == ["the box of 1 keypoint set recomputed from its labelled points"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"labels/a.txt": "0 0.5 0.5 0.1 0.1\n"}, "exactly one data.yaml"),
        ({"data.yaml": "nc: 2\n"}, "names is missing"),
        ({"data.yaml": "names: [a]\n", "labels/a.txt": "3 0.5 0.5 0.1 0.1\n"}, "line 1: class 3"),
        ({"data.yaml": "names: [a]\n", "labels/a.txt": "0 0.5 x 0.1 0.1\n"}, "not a number"),
        ({"data.yaml": "names: [a]\n", "labels/a.txt": "0 0.5 0.5 0.1\n"}, "even count"),
    ],
)
def test_import_refuses_malformed_sets_with_where(files: dict[str, str], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _read(_zip(files), {"images/a.jpg": (10, 10)})


def test_import_refuses_what_is_not_a_zip() -> None:
    with pytest.raises(FormatError, match="zip"):
        _read(b"names: [a]", {})
