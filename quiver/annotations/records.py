"""The intermediate form every codec reads and writes: labels, samples, annotations.

Geometry is in absolute pixels, in the shapes Quiver stores: box ``{x, y, width, height}``,
polygon ``{points}`` or ``{rings}``, keypoints ``{points: [[x, y, v], …]}``, mask ``{size:
[h, w], counts}`` (COCO RLE) and span ``{start, end}``; classification carries none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Shape = Literal["box", "polygon", "keypoints", "mask", "span", "none"]

KIND_SHAPES: dict[str, Shape] = {
    "CLASSIFICATION": "none",
    "MULTI_LABEL": "none",
    "BOUNDING_BOX": "box",
    "POLYGON": "polygon",
    "KEYPOINTS": "keypoints",
    "SEGMENTATION_MASK": "mask",
    "NAMED_ENTITY": "span",
    "TEXT_SPAN": "span",
}
SHAPE_KINDS: dict[Shape, str] = {
    "none": "CLASSIFICATION",
    "box": "BOUNDING_BOX",
    "polygon": "POLYGON",
    "keypoints": "KEYPOINTS",
    "mask": "SEGMENTATION_MASK",
    "span": "TEXT_SPAN",
}


@dataclass(slots=True)
class LabelDef:
    name: str
    kind: str = "CLASSIFICATION"
    color: str | None = None
    attributes: Any = None
    # Keypoint labels: {names: [...], edges: [[i, j], ...]} with 0-based indexes.
    skeleton: dict[str, Any] | None = None
    parent: str | None = None


@dataclass(slots=True)
class AnnotationRecord:
    label: str
    geometry: dict[str, Any] | None = None
    score: float | None = None
    attributes: dict[str, Any] | None = None
    # Predictions: the model as "name" or "name@version".
    model: str | None = None


@dataclass(slots=True)
class SampleRecord:
    path: str
    width: int | None = None
    height: int | None = None
    annotations: list[AnnotationRecord] = field(default_factory=list)
    status: str | None = None
    hard_example: bool | None = None
    metadata: dict[str, Any] | None = None
    row: int | None = None
    # Set by readers whose coordinates are fractions of the image size times this scale (YOLO
    # 1, Label Studio 100) when the file did not give the size: `denormalize` once it is known.
    scale: float | None = None
    # The path lacks its extension (YOLO names label files after images): any image matches.
    stem: bool = False


def shape_of(kind: str | None, geometry: dict[str, Any] | None) -> Shape:
    """The shape of a geometry, by its label's kind when known, else by its keys."""
    if geometry is None:
        return "none"
    if kind in KIND_SHAPES and KIND_SHAPES[kind] != "none":
        return KIND_SHAPES[kind]
    if "counts" in geometry:
        return "mask"
    if "start" in geometry:
        return "span"
    if "width" in geometry:
        return "box"
    if "rings" in geometry:
        return "polygon"
    points = geometry.get("points") or []
    if points and len(points[0]) == 3:
        return "keypoints"
    return "polygon"


def rings_of(geometry: dict[str, Any]) -> list[list[list[float]]]:
    """A polygon's rings, whichever of ``points`` or ``rings`` it was given as."""
    if "rings" in geometry:
        return [list(ring) for ring in geometry["rings"]]
    return [list(geometry.get("points", []))]


def polygon_geometry(rings: list[list[list[float]]]) -> dict[str, Any]:
    return {"points": rings[0]} if len(rings) == 1 else {"rings": rings}


def box_of_points(points: list[list[float]]) -> dict[str, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x, y = min(xs), min(ys)
    return {"x": x, "y": y, "width": max(xs) - x, "height": max(ys) - y}


def ring_area(ring: list[list[float]]) -> float:
    """Shoelace area of one ring (absolute)."""
    total = 0.0
    for i, (x0, y0, *_) in enumerate(ring):
        x1, y1, *_ = ring[(i + 1) % len(ring)]
        total += x0 * y1 - x1 * y0
    return abs(total) / 2


def number(value: float) -> float | int:
    """Integral floats written as ints, so exports read like their inputs."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


class Writer:
    """An exporter: ``start()``, then ``write(page)`` per page of samples, then ``finish()``."""

    media_type = "application/octet-stream"
    extension = "bin"

    def start(self) -> bytes:
        return b""

    def write(self, samples: list[SampleRecord]) -> bytes:
        raise NotImplementedError

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        """Release what an abandoned export holds (temp files)."""


class FormatError(ValueError):
    """The file is not what its format says; the message says where."""


def write_all(writer: Writer, pages: Iterable[list[SampleRecord]]) -> Iterator[bytes]:
    """Every chunk of an export, for callers that hold their pages already (tests, scripts)."""
    yield writer.start()
    for page in pages:
        yield writer.write(page)
    yield from writer.finish()


def scaled(geometry: dict[str, Any], sx: float, sy: float) -> dict[str, Any]:
    """Geometry with x multiplied by sx and y by sy (boxes, polygons, keypoints)."""
    result = dict(geometry)
    if "width" in geometry:
        for key, factor in (("x", sx), ("y", sy), ("width", sx), ("height", sy)):
            result[key] = number(round(float(geometry[key]) * factor, 9))
    if "points" in geometry:
        result["points"] = [_scaled_point(p, sx, sy) for p in geometry["points"]]
    if "rings" in geometry:
        result["rings"] = [[_scaled_point(p, sx, sy) for p in ring] for ring in geometry["rings"]]
    if "box" in geometry:
        result["box"] = scaled(geometry["box"], sx, sy)
    return result


def _scaled_point(point: list[Any], sx: float, sy: float) -> list[Any]:
    x = number(round(float(point[0]) * sx, 9))
    y = number(round(float(point[1]) * sy, 9))
    return [x, y, *point[2:]]


def denormalize(sample: SampleRecord, width: int, height: int) -> None:
    """Turn a reader's fractional coordinates into pixels of a width x height image."""
    if sample.scale is None:
        return
    sx, sy = width / sample.scale, height / sample.scale
    for annotation in sample.annotations:
        if annotation.geometry is not None:
            annotation.geometry = scaled(annotation.geometry, sx, sy)
    sample.width, sample.height, sample.scale = width, height, None


def without_box(geometry: dict[str, Any], report: Any) -> dict[str, Any]:
    """Keypoints as Quiver keeps them: points only, their box being the labelled points'
    bounds; a given box that differs from those bounds is noted as recomputed."""
    box = geometry.get("box")
    points = geometry["points"]
    if box is not None:
        labelled = [p for p in points if p[2] > 0]
        bounds = box_of_points(labelled) if labelled else None
        same = bounds is not None and all(
            abs(float(box[k]) - float(bounds[k])) < 1e-6 for k in ("x", "y", "width", "height")
        )
        if not same:
            report.add(
                "KEYPOINT_BOX_RECOMPUTED",
                "the box of 1 keypoint set recomputed from its labelled points",
                "the boxes of {n} keypoint sets recomputed from their labelled points",
            )
    return {"points": points}


def attribute_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def attribute_schema(types: dict[str, str]) -> list[dict[str, Any]] | None:
    """A label's attribute schema from the attribute values a file gave it."""
    return [{"name": name, "type": kind} for name, kind in types.items()] or None
