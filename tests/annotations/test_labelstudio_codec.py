"""Label Studio JSON export and import, no database."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from quiver.annotations import labelstudio
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    write_all,
)
from quiver.annotations.report import LossReport

TASKS: list[dict[str, Any]] = [
    {
        "id": 1,
        "data": {"image": "images/a.jpg"},
        "annotations": [
            {
                "result": [
                    {
                        "id": "1-1",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "rectanglelabels",
                        "original_width": 200,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {
                            "x": 10,
                            "y": 20,
                            "width": 25,
                            "height": 40,
                            "rotation": 0,
                            "rectanglelabels": ["car"],
                        },
                    },
                    {
                        "id": "1-2",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "polygonlabels",
                        "original_width": 200,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {
                            "points": [[10, 10], [50, 10], [50, 55.5]],
                            "closed": True,
                            "polygonlabels": ["road"],
                        },
                    },
                    {
                        "id": "1-3",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "keypointlabels",
                        "original_width": 200,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {"x": 12.5, "y": 50, "keypointlabels": ["nose"]},
                    },
                    {
                        "id": "1-4",
                        "from_name": "choice",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["day", "urban"]},
                    },
                ]
            }
        ],
        "predictions": [
            {
                "model_version": "yolo@8",
                "score": 0.75,
                "result": [
                    {
                        "id": "1-1",
                        "from_name": "label",
                        "to_name": "image",
                        "type": "rectanglelabels",
                        "original_width": 200,
                        "original_height": 100,
                        "image_rotation": 0,
                        "value": {
                            "x": 11,
                            "y": 21,
                            "width": 24,
                            "height": 39,
                            "rotation": 0,
                            "rectanglelabels": ["car"],
                        },
                        "score": 0.75,
                    }
                ],
            }
        ],
    },
    {
        "id": 2,
        "data": {"image": "docs/b.txt"},
        "annotations": [
            {
                "result": [
                    {
                        "id": "2-1",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "value": {"start": 3, "end": 9, "labels": ["person"]},
                    }
                ]
            }
        ],
    },
    {"id": 3, "data": {"image": "images/empty.jpg"}},
]


def _read(tasks: Any) -> tuple[list[LabelDef], list[SampleRecord], LossReport]:
    report = LossReport()
    labels: list[LabelDef] = []
    samples: list[SampleRecord] = []
    for item in labelstudio.read(io.BytesIO(json.dumps(tasks).encode()), report):
        (labels if isinstance(item, LabelDef) else samples).append(item)  # type: ignore[arg-type]
    return labels, samples, report


def _export(labels: list[LabelDef], samples: list[SampleRecord]) -> tuple[Any, LossReport]:
    report = LossReport()
    writer = labelstudio.LabelStudioWriter(labels, report)
    return json.loads(b"".join(write_all(writer, [samples[:1], samples[1:]]))), report


def test_import_turns_percents_into_pixels_and_keeps_predictions_apart() -> None:
    labels, samples, report = _read(TASKS)

    assert [(label.name, label.kind) for label in labels] == [
        ("car", "BOUNDING_BOX"),
        ("road", "POLYGON"),
        ("nose", "KEYPOINTS"),
        ("day", "CLASSIFICATION"),
        ("urban", "CLASSIFICATION"),
        ("person", "TEXT_SPAN"),
    ]
    first = samples[0]
    assert (first.path, first.width, first.height) == ("images/a.jpg", 200, 100)
    assert [(a.label, a.geometry, a.model, a.score) for a in first.annotations] == [
        ("car", {"x": 20, "y": 20, "width": 50, "height": 40}, None, None),
        ("road", {"points": [[20, 10], [100, 10], [100, 55.5]]}, None, None),
        ("nose", {"points": [[25, 50, 2]]}, None, None),
        ("day", None, None, None),
        ("urban", None, None, None),
        ("car", {"x": 22, "y": 21, "width": 48, "height": 39}, "yolo@8", 0.75),
    ]
    assert [(a.label, a.geometry) for a in samples[1].annotations] == [
        ("person", {"start": 3, "end": 9})
    ]
    assert samples[2].annotations == []
    assert not report


def _without_ids(tasks: Any) -> Any:
    for task in tasks:
        for group in (*task.get("annotations", []), *task.get("predictions", [])):
            for region in group["result"]:
                region.pop("id")
    return tasks


def test_round_trip_label_studio_to_records_to_label_studio_is_identical() -> None:
    labels, samples, _ = _read(TASKS)
    exported, report = _export(labels, samples)

    assert _without_ids(exported) == _without_ids(json.loads(json.dumps(TASKS)))
    assert not report


def test_rotation_is_kept_and_masks_and_multi_point_keypoints_reported() -> None:
    tasks = json.loads(json.dumps(TASKS[:1]))
    tasks[0]["annotations"][0]["result"][0]["value"]["rotation"] = 30
    labels, samples, report = _read(tasks)
    assert samples[0].annotations[0].geometry == {
        "x": 20,
        "y": 20,
        "width": 50,
        "height": 40,
        "rotation": 30,
    }
    assert not report

    labels.append(LabelDef("sky", "SEGMENTATION_MASK"))
    labels.append(LabelDef("pose", "KEYPOINTS", skeleton={"names": ["a", "b"], "edges": []}))
    samples[0].annotations.append(AnnotationRecord("sky", {"size": [100, 200], "counts": [0, 5]}))
    samples[0].annotations.append(AnnotationRecord("pose", {"points": [[10, 10, 2], [20, 20, 2]]}))
    exported, export_report = _export(labels, samples)

    regions = exported[0]["annotations"][0]["result"]
    assert regions[0]["value"]["rotation"] == 30
    assert [r["value"].get("keypointlabels") for r in regions if r["type"] == "keypointlabels"] == [
        ["nose"],
        ["a"],
        ["b"],
    ]
    assert export_report.lines() == [
        "1 mask dropped: Label Studio brushes use their own RLE",
        "1 keypoint set written as one region per point (named by the skeleton)",
    ]


def test_import_reads_paths_from_label_studio_urls() -> None:
    tasks = [
        {"data": {"image": "/data/local-files/?d=images/a%20b.jpg"}},
        {"data": {"image": "s3://bucket/images/c.jpg"}},
        {"data": {"image": "/data/upload/3/d%20e.jpg"}},
        {"data": {"text_file": "notes/f.txt"}},
    ]
    _, samples, _ = _read(tasks)

    assert [s.path for s in samples] == [
        "images/a b.jpg",
        "images/c.jpg",
        "data/upload/3/d e.jpg",
        "notes/f.txt",
    ]


def test_import_reports_regions_quiver_cannot_hold() -> None:
    tasks = [
        {
            "data": {"image": "a.jpg"},
            "annotations": [
                {"result": [{"type": "textarea", "value": {"text": ["hello"]}}]},
                {
                    "was_cancelled": True,
                    "result": [{"type": "choices", "value": {"choices": ["x"]}}],
                },
            ],
        }
    ]
    labels, samples, report = _read(tasks)

    assert labels == []
    assert samples[0].annotations == []
    assert report.lines() == ["1 textarea region dropped: Quiver has no such annotation"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[{", "not valid JSON"),
        (b"[1]", "each task must be an object"),
        (b'[{"data": {}}]', "task 1: data names no file"),
    ],
)
def test_import_refuses_malformed_files(document: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        for _ in labelstudio.read(io.BytesIO(document), LossReport()):
            pass
