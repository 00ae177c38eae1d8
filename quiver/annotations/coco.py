"""COCO detection JSON: boxes, polygons, RLE masks and keypoints.

The export is written while it is sent: ``info``, ``licenses`` and ``categories`` first,
then every annotation as its sample's page arrives, then ``images`` from a temp file the
pages filled (COCO readers take the keys in any order). ``area`` is the polygon's shoelace
area, the mask's pixel count, or the box's ``w * h`` (keypoints: their box). Image,
annotation and category ids are numbered from 1 in the order written.

The import reads the file twice with a streaming parser: first categories, images and the
shapes each category uses (which decide its label's kind), then the annotations, never
holding more than one of them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import ijson

from quiver.annotations import rle
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    Writer,
    attribute_schema,
    attribute_type,
    box_of_points,
    number,
    polygon_geometry,
    ring_area,
    rings_of,
    shape_of,
    without_box,
)
from quiver.annotations.report import LossReport

CHUNK = 1024 * 1024
INFO = {"description": "Exported by Quiver", "version": "1.0"}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _box_list(box: dict[str, Any]) -> list[float | int]:
    return [number(float(box[key])) for key in ("x", "y", "width", "height")]


class CocoWriter(Writer):
    media_type = "application/json"
    extension = "json"

    def __init__(self, labels: Iterable[LabelDef], report: LossReport) -> None:
        self.labels = list(labels)
        self.report = report
        self.category_ids = {label.name: i for i, label in enumerate(self.labels, start=1)}
        self.kinds = {label.name: label.kind for label in self.labels}
        # Lives across pages: closed by finish() once sent, or by close() when abandoned.
        self.images: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.image_id = 0
        self.annotation_id = 0

    def _category(self, label: LabelDef) -> dict[str, Any]:
        category: dict[str, Any] = {
            "id": self.category_ids[label.name],
            "name": label.name,
            "supercategory": label.parent or "",
        }
        if label.kind == "KEYPOINTS":
            skeleton = label.skeleton or {}
            category["keypoints"] = list(skeleton.get("names") or [])
            category["skeleton"] = [[i + 1, j + 1] for i, j in skeleton.get("edges") or []]
        return category

    def start(self) -> bytes:
        categories = [self._category(label) for label in self.labels]
        head = f'{{"info":{_dumps(INFO)},"licenses":[],"categories":{_dumps(categories)}'
        return (head + ',"annotations":[').encode()

    def write(self, samples: list[SampleRecord]) -> bytes:
        parts: list[str] = []
        images: list[str] = []
        for sample in samples:
            self.image_id += 1
            if sample.width is None or sample.height is None:
                self.report.add(
                    "SIZE_UNKNOWN",
                    "1 image without a known size written with width and height 0",
                    "{n} images without a known size written with width and height 0",
                )
            image = {
                "id": self.image_id,
                "file_name": sample.path,
                "width": sample.width or 0,
                "height": sample.height or 0,
            }
            images.append(_dumps(image))
            for annotation in sample.annotations:
                plain = self._plain_box(annotation)
                if plain is not None:
                    parts.append(plain)
                    continue
                coco = self._annotation(annotation)
                if coco is not None:
                    parts.append(_dumps(coco))
        if images:
            separator = b"," if self.image_id > len(images) else b""
            self.images.write(separator + ",".join(images).encode())
        if not parts:
            return b""
        comma = "," if self.annotation_id > len(parts) else ""
        return (comma + ",".join(parts)).encode()

    def _plain_box(self, annotation: AnnotationRecord) -> str | None:
        """The common case, a box of whole pixels and nothing else, written without a dict
        (what _annotation writes for it, byte for byte, in a third of the time)."""
        geometry = annotation.geometry
        if (
            geometry is None
            or len(geometry) != 4
            or annotation.score is not None
            or annotation.attributes
            or annotation.model is not None
            or self.kinds.get(annotation.label) != "BOUNDING_BOX"
        ):
            return None
        x, y, w, h = (geometry.get(k) for k in ("x", "y", "width", "height"))
        if not all(type(v) is int for v in (x, y, w, h)):
            return None
        self.annotation_id += 1
        return (
            f'{{"id":{self.annotation_id},"image_id":{self.image_id},'
            f'"category_id":{self.category_ids[annotation.label]},"iscrowd":0,'
            f'"bbox":[{x},{y},{w},{h}],"area":{w * h}}}'  # type: ignore[operator]
        )

    def _annotation(self, annotation: AnnotationRecord) -> dict[str, Any] | None:
        kind = self.kinds.get(annotation.label)
        geometry = annotation.geometry
        shape = shape_of(kind, geometry)
        if shape == "none" or geometry is None:
            self.report.add(
                "CLASSIFICATION_DROPPED",
                "1 image-level label dropped: COCO has no image labels",
                "{n} image-level labels dropped: COCO has no image labels",
            )
            return None
        if shape == "span":
            self.report.add(
                "SPAN_DROPPED",
                "1 text span dropped: COCO has no text spans",
                "{n} text spans dropped: COCO has no text spans",
            )
            return None
        attributes = dict(annotation.attributes or {})
        iscrowd = 1 if attributes.pop("iscrowd", 0) else 0
        self.annotation_id += 1
        coco: dict[str, Any] = {
            "id": self.annotation_id,
            "image_id": self.image_id,
            "category_id": self.category_ids[annotation.label],
            "iscrowd": iscrowd,
        }
        if shape == "box":
            if geometry.get("rotation"):
                self.report.add(
                    "ROTATION_DROPPED",
                    "rotation dropped for 1 box",
                    "rotation dropped for {n} boxes",
                )
            bbox = _box_list(geometry)
            coco["bbox"] = bbox
            coco["area"] = number(float(bbox[2]) * float(bbox[3]))
        elif shape == "polygon":
            rings = rings_of(geometry)
            coco["segmentation"] = [[number(float(v)) for p in r for v in p[:2]] for r in rings]
            coco["bbox"] = _box_list(box_of_points([p for r in rings for p in r]))
            coco["area"] = number(sum(ring_area(r) for r in rings))
        elif shape == "mask":
            coco["segmentation"] = {"size": list(geometry["size"]), "counts": geometry["counts"]}
            coco["bbox"] = rle.bbox(geometry)
            coco["area"] = rle.area(geometry)
        else:
            points = geometry["points"]
            labelled = [p for p in points if p[2] > 0]
            coco["keypoints"] = [number(float(v)) for p in points for v in p[:3]]
            coco["num_keypoints"] = len(labelled)
            if "box" in geometry:
                bbox = _box_list(geometry["box"])
            elif labelled:
                bbox = _box_list(box_of_points(labelled))
            else:
                bbox = [0, 0, 0, 0]
            coco["bbox"] = bbox
            coco["area"] = number(float(bbox[2]) * float(bbox[3]))
        if annotation.score is not None:
            coco["score"] = annotation.score
        if attributes:
            coco["attributes"] = attributes
        if annotation.model is not None:
            self.report.add(
                "MODEL_DROPPED",
                "the model of 1 prediction dropped: COCO does not name models",
                "the model of {n} predictions dropped: COCO does not name models",
            )
        return coco

    def finish(self) -> Iterator[bytes]:
        yield b'],"images":['
        self.images.seek(0)
        try:
            while chunk := self.images.read(CHUNK):
                yield chunk
        finally:
            self.images.close()
        # What COCO could not hold travels with the file (readers ignore unknown keys).
        losses = [{"code": loss.code, "message": loss.message} for loss in self.report.losses()]
        yield f'],"quiver":{{"losses":{_dumps(losses)}}}}}'.encode()

    def close(self) -> None:
        self.images.close()


def _items(stream: IO[bytes], wanted: set[str]) -> Iterator[tuple[str, Any]]:
    """Whole objects at the given ijson prefixes, one at a time."""
    stream.seek(0)
    builder: ijson.ObjectBuilder | None = None
    current = ""
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            if builder is None:
                if prefix in wanted and event in ("start_map", "start_array"):
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                    current = prefix
                continue
            builder.event(event, value)
            if prefix == current and event in ("end_map", "end_array"):
                yield current, builder.value
                builder = None
    except ijson.JSONError as problem:
        raise FormatError(f"not valid JSON: {problem}") from None


class _Shapes:
    """How many annotations of each category have each shape (decides the label's kind)."""

    def __init__(self) -> None:
        self.counts: dict[Any, dict[str, int]] = {}
        self.attributes: dict[Any, dict[str, str]] = {}

    def scan(self, stream: IO[bytes]) -> None:
        stream.seek(0)
        category: Any = None
        shape = "box"
        attributes: dict[str, str] = {}
        try:
            for prefix, event, value in ijson.parse(stream, use_float=True):
                if not prefix.startswith("annotations.item"):
                    continue
                if prefix == "annotations.item":
                    if event == "start_map":
                        category, shape, attributes = None, "box", {}
                    elif event == "end_map":
                        per = self.counts.setdefault(category, {})
                        per[shape] = per.get(shape, 0) + 1
                        if attributes:
                            self.attributes.setdefault(category, {}).update(attributes)
                elif prefix == "annotations.item.category_id":
                    category = value
                elif prefix == "annotations.item.iscrowd" and value:
                    attributes["iscrowd"] = "integer"
                elif prefix.startswith("annotations.item.attributes.") and prefix.count(".") == 3:
                    kind = attribute_type(value)
                    if kind is not None:
                        attributes[prefix.rsplit(".", 1)[1]] = kind
                elif prefix == "annotations.item.segmentation" and event == "start_map":
                    shape = "mask"
                elif prefix == "annotations.item.segmentation.item" and event == "start_array":
                    shape = "polygon"
        except ijson.JSONError as problem:
            raise FormatError(f"not valid JSON: {problem}") from None

    def kind(self, category: Any) -> str:
        per = self.counts.get(category, {})
        ranked = sorted(
            (("polygon", 2), ("mask", 1), ("box", 0)),
            key=lambda item: (per.get(item[0], 0), item[1]),
            reverse=True,
        )
        best = ranked[0][0]
        if not per.get(best):
            return "BOUNDING_BOX"
        return {"polygon": "POLYGON", "mask": "SEGMENTATION_MASK", "box": "BOUNDING_BOX"}[best]


def read(stream: IO[bytes], report: LossReport) -> Iterator[LabelDef | SampleRecord]:
    """Labels (one per category), every image as a sample, then annotations per image."""
    categories: dict[Any, LabelDef] = {}
    images: dict[Any, tuple[str, int | None, int | None]] = {}
    for prefix, value in _items(stream, {"categories.item", "images.item"}):
        if not isinstance(value, dict):
            raise FormatError(f"{prefix.split('.')[0]}: each entry must be an object")
        if prefix == "images.item":
            name = value.get("file_name")
            if not isinstance(name, str) or "id" not in value:
                raise FormatError(f"images: an image needs an id and a file_name ({value!r:.80})")
            images[value["id"]] = (name, _int(value.get("width")), _int(value.get("height")))
        else:
            if not isinstance(value.get("name"), str) or "id" not in value:
                raise FormatError(f"categories: a category needs an id and a name ({value!r:.80})")
            categories[value["id"]] = _label(value)
    shapes = _Shapes()
    shapes.scan(stream)
    parents = {label.name for label in categories.values()}
    for category_id, label in categories.items():
        if label.kind != "KEYPOINTS":
            label.kind = shapes.kind(category_id)
        if label.parent is not None and label.parent not in parents:
            label.parent = None  # a supercategory that is not itself a category
        label.attributes = attribute_schema(shapes.attributes.get(category_id, {}))
        yield label
    for name, width, height in images.values():
        yield SampleRecord(path=name, width=width, height=height)
    pending: SampleRecord | None = None
    for _, value in _items(stream, {"annotations.item"}):
        if not isinstance(value, dict):
            raise FormatError("annotations: each entry must be an object")
        image = images.get(value.get("image_id"))
        if image is None:
            raise FormatError(f"annotation {value.get('id')}: image_id is not in images")
        category = categories.get(value.get("category_id"))
        if category is None:
            raise FormatError(f"annotation {value.get('id')}: category_id is not in categories")
        annotation = _annotation(value, category, report)
        if annotation is None:
            continue
        if pending is not None and pending.path == image[0]:
            pending.annotations.append(annotation)
            continue
        if pending is not None:
            yield pending
        pending = SampleRecord(path=image[0], width=image[1], height=image[2])
        pending.annotations.append(annotation)
    if pending is not None:
        yield pending


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


def _label(category: dict[str, Any]) -> LabelDef:
    supercategory = category.get("supercategory")
    label = LabelDef(name=category["name"], kind="BOUNDING_BOX")
    if isinstance(supercategory, str) and supercategory and supercategory != category["name"]:
        label.parent = supercategory
    names = category.get("keypoints")
    if isinstance(names, list) and names:
        label.kind = "KEYPOINTS"
        edges = category.get("skeleton") or []
        label.skeleton = {
            "names": [str(n) for n in names],
            "edges": [[int(i) - 1, int(j) - 1] for i, j in edges],
        }
    return label


def _flat_pairs(values: list[Any], size: int) -> list[list[float]]:
    if len(values) % size:
        raise FormatError(f"a coordinate list of {len(values)} numbers is not in groups of {size}")
    return [[number(float(v)) for v in values[i : i + size]] for i in range(0, len(values), size)]


def _annotation(
    value: dict[str, Any], label: LabelDef, report: LossReport
) -> AnnotationRecord | None:
    attributes = dict(value.get("attributes") or {})
    if value.get("iscrowd"):
        attributes["iscrowd"] = 1
    score = value.get("score")
    record = AnnotationRecord(
        label=label.name,
        score=float(score) if isinstance(score, int | float) else None,
        attributes=attributes or None,
    )
    segmentation = value.get("segmentation")
    bbox = value.get("bbox")
    box = None
    if isinstance(bbox, list) and len(bbox) == 4:
        keys = ("x", "y", "width", "height")
        box = {k: number(float(v)) for k, v in zip(keys, bbox, strict=True)}
    polygons = segmentation if isinstance(segmentation, list) and segmentation else None
    mask = segmentation if isinstance(segmentation, dict) else None
    if label.kind == "KEYPOINTS":
        keypoints = value.get("keypoints")
        if not isinstance(keypoints, list) or not keypoints:
            report.add(
                "KEYPOINTS_MISSING",
                "1 annotation of a keypoint category without keypoints dropped",
                "{n} annotations of a keypoint category without keypoints dropped",
            )
            return None
        record.geometry = without_box({"points": _flat_pairs(keypoints, 3), "box": box}, report)
        if polygons or mask:
            report.add(
                "KEYPOINT_SEGMENTATION_DROPPED",
                "segmentation dropped for 1 keypoint annotation",
                "segmentation dropped for {n} keypoint annotations",
            )
        return record
    if label.kind == "POLYGON":
        if polygons:
            rings = [_flat_pairs(ring, 2) for ring in polygons]
            record.geometry = polygon_geometry(rings)
        elif box is not None:
            record.geometry = {"points": _corners(box)}
            what = "mask" if mask else "box"
            report.add(
                f"{what.upper()}_AS_POLYGON",
                f"1 {what} of a polygon category written as a rectangle",
                f"{{n}} {what}es of polygon categories written as rectangles"
                if what == "box"
                else f"{{n}} {what}s of polygon categories written as their bounding rectangles",
            )
        else:
            raise FormatError(f"annotation {value.get('id')}: neither segmentation nor bbox")
        return record
    if label.kind == "SEGMENTATION_MASK":
        if mask is None or "counts" not in mask or "size" not in mask:
            report.add(
                "NOT_A_MASK_DROPPED",
                "1 annotation without an RLE mask dropped from a mask category",
                "{n} annotations without an RLE mask dropped from mask categories",
            )
            return None
        counts = mask["counts"]
        record.geometry = {
            "size": [int(v) for v in mask["size"]],
            "counts": counts if isinstance(counts, str) else [int(c) for c in counts],
        }
        return record
    if box is None:
        raise FormatError(f"annotation {value.get('id')}: no bbox")
    record.geometry = box
    if polygons or mask:
        report.add(
            "SEGMENTATION_AS_BOX",
            "segmentation of 1 annotation reduced to its bbox",
            "segmentation of {n} annotations reduced to their bbox",
        )
    return record


def _corners(box: dict[str, Any]) -> list[list[float]]:
    x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
    return [[number(v) for v in p] for p in ([x, y], [x + w, y], [x + w, y + h], [x, y + h])]
