"""COCO export and import, checked by pycocotools itself (no database)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quiver.annotations import coco, rle
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    write_all,
)
from quiver.annotations.report import LossReport

NAMES = [f"k{i}" for i in range(17)]  # COCOeval's default sigmas are for 17 keypoints
LABELS = [
    LabelDef("car", "BOUNDING_BOX"),
    LabelDef("person", "BOUNDING_BOX"),
    LabelDef("road", "POLYGON", parent="scene"),
    LabelDef("sky", "SEGMENTATION_MASK"),
    LabelDef("pose", "KEYPOINTS", skeleton={"names": NAMES, "edges": [[0, 1], [1, 2]]}),
    LabelDef("indoor", "CLASSIFICATION"),
]


def _mask(height: int, width: int, top: int, left: int, size: int) -> dict[str, Any]:
    bitmap = np.zeros((height, width), dtype=np.uint8, order="F")
    bitmap[top : top + size, left : left + size] = 1
    counts = mask_utils.encode(bitmap)["counts"]
    return {
        "size": [height, width],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


def _keypoints(dx: float) -> dict[str, Any]:
    points = [[10 + dx + 3 * i, 20 + 2 * i, 2] for i in range(17)]
    points[5][2] = 1
    points[6] = [0, 0, 0]
    return {"points": points}


def _samples() -> list[SampleRecord]:
    samples = []
    for i in range(4):
        annotations = [
            AnnotationRecord("car", {"x": 5 + i, "y": 6, "width": 30, "height": 20}),
            AnnotationRecord("person", {"x": 50, "y": 40 + i, "width": 12.5, "height": 33}),
            AnnotationRecord("road", {"points": [[0, 60], [80, 60], [80, 90], [0, 95.5 - i]]}),
            AnnotationRecord(
                "road",
                {"rings": [[[1, 1], [9, 1], [9, 9]], [[20, 20], [30, 20], [30, 30], [20, 30]]]},
            ),
            AnnotationRecord("sky", _mask(100, 120, 2 + i, 40, 25)),
            AnnotationRecord("pose", _keypoints(i)),
            AnnotationRecord("indoor"),
        ]
        samples.append(SampleRecord(f"images/img{i}.jpg", 120, 100, annotations))
    samples.append(SampleRecord("images/empty.jpg", 64, 48, []))
    return samples


def _export(samples: list[SampleRecord], pages: int = 2) -> tuple[bytes, LossReport]:
    report = LossReport()
    writer = coco.CocoWriter(LABELS, report)
    chunks = [samples[i::pages] for i in range(pages)]
    return b"".join(write_all(writer, chunks)), report


def _load(tmp_path: Path, data: bytes) -> COCO:
    path = tmp_path / "export.json"
    path.write_bytes(data)
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _self_ap(
    gt: COCO, iou_type: Literal["segm", "bbox", "keypoints"], category_names: list[str]
) -> float:
    ids = gt.getCatIds(catNms=category_names)
    results = [dict(a, score=1.0) for a in gt.loadAnns(gt.getAnnIds(catIds=ids))]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluation.params.catIds = ids
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def test_export_loads_in_pycocotools_with_every_image_and_annotation(tmp_path: Path) -> None:
    data, _ = _export(_samples())
    gt = _load(tmp_path, data)

    assert set(gt.dataset) == {
        "info",
        "licenses",
        "categories",
        "annotations",
        "images",
        "quiver",
    }
    assert len(gt.getImgIds()) == 5
    assert len(gt.getAnnIds()) == 4 * 6
    images = {img["file_name"]: img for img in gt.dataset["images"]}
    assert images["images/empty.jpg"]["width"] == 64
    assert images["images/empty.jpg"]["height"] == 48
    document: dict[str, Any] = json.loads(data)
    categories = {c["name"]: c for c in document["categories"]}
    assert sorted(c["id"] for c in categories.values()) == [1, 2, 3, 4, 5, 6]
    assert categories["road"]["supercategory"] == "scene"
    assert categories["pose"]["keypoints"] == NAMES
    assert categories["pose"]["skeleton"] == [[1, 2], [2, 3]]


def test_export_writes_area_bbox_iscrowd_and_num_keypoints(tmp_path: Path) -> None:
    data, _ = _export(_samples()[:1], pages=1)
    document: dict[str, Any] = json.loads(data)
    names = {c["id"]: c["name"] for c in document["categories"]}
    by_category = {names[a["category_id"]]: a for a in document["annotations"]}

    assert by_category["car"]["bbox"] == [5, 6, 30, 20]
    assert by_category["car"]["area"] == 600
    assert by_category["person"]["area"] == 12.5 * 33
    assert all(a["iscrowd"] == 0 for a in document["annotations"])
    sky = by_category["sky"]
    assert sky["area"] == 25 * 25 == int(mask_utils.area(sky["segmentation"]))
    assert sky["bbox"] == [40, 2, 25, 25] == mask_utils.toBbox(sky["segmentation"]).tolist()
    pose = by_category["pose"]
    assert pose["num_keypoints"] == 16
    assert len(pose["keypoints"]) == 51


def test_export_evaluates_against_itself_at_ap_one(tmp_path: Path) -> None:
    gt = _load(tmp_path, _export(_samples())[0])

    assert _self_ap(gt, "bbox", ["car", "person", "road", "sky", "pose"]) == 1.0
    assert _self_ap(gt, "segm", ["road", "sky"]) == 1.0
    assert _self_ap(gt, "keypoints", ["pose"]) == 1.0


def test_export_reports_what_coco_cannot_hold() -> None:
    samples = _samples()
    samples[0].annotations.append(
        AnnotationRecord("car", {"x": 1, "y": 1, "width": 2, "height": 2}, 0.5, model="yolo@8")
    )
    data, report = _export(samples)

    assert [loss["message"] for loss in json.loads(data)["quiver"]["losses"]] == report.lines()
    assert report.lines() == [
        "4 image-level labels dropped: COCO has no image labels",
        "the model of 1 prediction dropped: COCO does not name models",
    ]


def test_rle_strings_round_trip_like_pycocotools() -> None:
    mask = _mask(37, 53, 3, 7, 19)
    runs = rle.decode_counts(mask["counts"])

    assert rle.encode_counts(runs) == mask["counts"]
    uncompressed: Any = {"size": [37, 53], "counts": runs}
    assert mask_utils.frPyObjects(uncompressed, 37, 53)["counts"].decode() == mask["counts"]
    assert rle.area(mask) == 19 * 19
    assert rle.bbox(mask) == [7, 3, 19, 19]


def _read(data: bytes) -> tuple[list[LabelDef], list[SampleRecord], LossReport]:
    report = LossReport()
    labels: list[LabelDef] = []
    samples: list[SampleRecord] = []
    for item in coco.read(io.BytesIO(data), report):
        (labels if isinstance(item, LabelDef) else samples).append(item)  # type: ignore[arg-type]
    return labels, samples, report


def _merged(samples: list[SampleRecord]) -> dict[str, SampleRecord]:
    merged: dict[str, SampleRecord] = {}
    for sample in samples:
        if sample.path in merged:
            merged[sample.path].annotations.extend(sample.annotations)
        else:
            merged[sample.path] = sample
    return merged


def test_import_reads_back_what_was_exported() -> None:
    original = _samples()
    data, _ = _export(original)
    labels, samples, report = _read(data)

    assert [(label.name, label.kind, label.parent) for label in labels] == [
        ("car", "BOUNDING_BOX", None),
        ("person", "BOUNDING_BOX", None),
        ("road", "POLYGON", None),
        ("sky", "SEGMENTATION_MASK", None),
        ("pose", "KEYPOINTS", None),
        ("indoor", "BOUNDING_BOX", None),
    ]
    assert labels[4].skeleton == {"names": NAMES, "edges": [[0, 1], [1, 2]]}
    merged = _merged(samples)
    assert set(merged) == {s.path for s in original}
    for sample in original:
        back = merged[sample.path]
        assert (back.width, back.height) == (sample.width, sample.height)
        expected = [a for a in sample.annotations if a.geometry is not None]
        assert [(a.label, _without_box(a.geometry)) for a in back.annotations] == [
            (a.label, a.geometry) for a in expected
        ]
    assert not report


def _without_box(geometry: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in geometry.items() if k != "box"} if geometry else geometry


def test_import_of_coco_instances_keeps_polygons_and_crowd_masks() -> None:
    document = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 50, "height": 40}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "bbox": [1, 2, 8, 7],
                "area": 28,
                "iscrowd": 0,
                "segmentation": [[1, 2, 9, 2, 9, 9]],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 3,
                "bbox": [0, 0, 4, 4],
                "area": 16,
                "iscrowd": 1,
                "segmentation": {"size": [40, 50], "counts": [0, 4, 36, 4, 1956]},
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 3,
                "bbox": [10, 10, 5, 5],
                "area": 25,
                "iscrowd": 0,
                "segmentation": [],
            },
        ],
        "categories": [{"id": 3, "name": "cat", "supercategory": "animal"}],
    }
    labels, samples, report = _read(json.dumps(document).encode())

    assert [(label.name, label.kind) for label in labels] == [("cat", "POLYGON")]
    geometries = [a.geometry for a in _merged(samples)["a.jpg"].annotations]
    assert geometries == [
        {"points": [[1, 2], [9, 2], [9, 9]]},
        {"points": [[0, 0], [4, 0], [4, 4], [0, 4]]},
        {"points": [[10, 10], [15, 10], [15, 15], [10, 15]]},
    ]
    assert _merged(samples)["a.jpg"].annotations[1].attributes == {"iscrowd": 1}
    assert report.lines() == [
        "1 mask of a polygon category written as a rectangle",
        "1 box of a polygon category written as a rectangle",
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "not valid JSON"),
        (b'{"images": [{"id": 1}]}', "needs an id and a file_name"),
        (
            b'{"images": [], "categories": [], "annotations": [{"id": 5, "image_id": 1}]}',
            "annotation 5: image_id is not in images",
        ),
    ],
)
def test_import_refuses_malformed_files_with_where(document: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _read(document)


def test_traced_mask_outlines_rasterize_back_to_the_mask_with_holes_filled() -> None:
    bitmap = np.zeros((10, 12), dtype=np.uint8, order="F")
    bitmap[2:6, 3:9] = 1
    bitmap[3:5, 5:7] = 0  # a hole
    bitmap[7:9, 0:2] = 1
    counts = mask_utils.encode(bitmap)["counts"]
    mask = {"size": [10, 12], "counts": counts.decode() if isinstance(counts, bytes) else counts}

    rings, holes = rle.traced_rings(mask)

    assert (rle.bitmap(mask) == bitmap.astype(bool)).all()
    assert rings == [[[3, 2], [3, 6], [9, 6], [9, 2]], [[0, 7], [0, 9], [2, 9], [2, 7]]]
    assert holes == 1
    polygons: Any = [[v for point in ring for v in point] for ring in rings]
    traced = mask_utils.merge(mask_utils.frPyObjects(polygons, 10, 12))
    assert int(mask_utils.area(traced)) == int(bitmap.sum()) + 4


def test_plain_boxes_are_written_exactly_as_the_general_path_writes_them() -> None:
    writer = coco.CocoWriter(LABELS, LossReport())
    annotation = AnnotationRecord("car", {"x": 3, "y": 4, "width": 10, "height": 7})
    writer.image_id = 9
    fast = writer._plain_box(annotation)
    general = writer._annotation(annotation)
    writer.close()

    assert fast is not None
    assert general is not None
    assert json.loads(fast) == {**general, "id": general["id"] - 1}
    assert fast == json.dumps({**general, "id": general["id"] - 1}, separators=(",", ":"))
    assert (
        writer._plain_box(AnnotationRecord("car", {"x": 3.5, "y": 4, "width": 1, "height": 1}))
        is None
    )
    assert (
        writer._plain_box(AnnotationRecord("road", {"x": 3, "y": 4, "width": 1, "height": 1}))
        is None
    )
