"""Checking annotation geometry per label kind, attribute values against a label's schema,
and the schemas and skeletons labels declare. Pure functions: each returns the problems
found (empty when all is well), every one naming the field path of the bad value.

Geometry is in absolute pixels of the sample's image (or code points of its text):

- BOUNDING_BOX ``{x, y, width, height}`` (top-left corner; optional ``rotation`` in degrees)
- POLYGON ``{points: [[x, y], …]}`` or ``{rings: [[[x, y], …], …]}``, each ring ≥ 3 points
- KEYPOINTS ``{points: [[x, y, v], …]}``, v 0 (not labelled), 1 (hidden) or 2 (visible),
  one point per skeleton name when the label has a skeleton
- SEGMENTATION_MASK ``{size: [height, width], counts}``: COCO RLE, ``counts`` a list of run
  lengths or COCO's compressed string
- NAMED_ENTITY, TEXT_SPAN ``{start, end}`` (code points, end exclusive; optional ``text``,
  the covered text, checked against the file when it is known)
- CLASSIFICATION, MULTI_LABEL: no geometry (null)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from quiver.models import LabelKind
from quiver.resolvers.errors import ErrorCode, FieldPath, Problem

ATTRIBUTE_TYPES = ("string", "number", "integer", "boolean", "enum")
MAX_ATTRIBUTES = 64
MAX_POINTS = 100_000
MAX_SKELETON = 1_000
GEOMETRY_KINDS = {
    LabelKind.BOUNDING_BOX: "box",
    LabelKind.POLYGON: "polygon",
    LabelKind.KEYPOINTS: "keypoints",
    LabelKind.SEGMENTATION_MASK: "mask",
    LabelKind.NAMED_ENTITY: "span",
    LabelKind.TEXT_SPAN: "span",
}


def _problem(field: FieldPath, message: str) -> list[Problem]:
    return [Problem(field, message, ErrorCode.INVALID)]


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_geometry(
    kind: LabelKind,
    geometry: Any,
    width: int | None,
    height: int | None,
    field: FieldPath,
    *,
    skeleton: Any = None,
    text: str | None = None,
) -> list[Problem]:
    """Problems with ``geometry`` for a label of ``kind`` on a sample of the given size
    (None: unknown, not checked); ``skeleton`` is the label's, ``text`` the file's text."""
    shape = GEOMETRY_KINDS.get(kind)
    if shape is None:
        if geometry is not None:
            return _problem(field, f"{kind.value} labels carry no geometry; give null")
        return []
    if not isinstance(geometry, dict):
        return _problem(field, f"{kind.value} labels need a {shape} geometry object")
    if shape == "box":
        return _box(geometry, width, height, field)
    if shape == "polygon":
        return _polygon(geometry, width, height, field)
    if shape == "keypoints":
        return _keypoints(geometry, width, height, field, skeleton)
    if shape == "mask":
        return _mask(geometry, width, height, field)
    return _span(geometry, field, text)


def _unexpected(geometry: dict[str, Any], allowed: set[str], field: FieldPath) -> list[Problem]:
    extra = sorted(set(geometry) - allowed)
    if extra:
        return _problem((*field, extra[0]), f"Unknown geometry key {extra[0]!r}")
    return []


def _box(g: dict[str, Any], width: int | None, height: int | None, f: FieldPath) -> list[Problem]:
    problems = _unexpected(g, {"x", "y", "width", "height", "rotation"}, f)
    for key in ("x", "y", "width", "height"):
        if not _number(g.get(key)):
            problems += _problem((*f, key), f"A box needs a number {key!r}")
    if "rotation" in g and not _number(g["rotation"]):
        problems += _problem((*f, "rotation"), "rotation is a number of degrees")
    if problems:
        return problems
    x, y, w, h = (float(g[key]) for key in ("x", "y", "width", "height"))
    if w <= 0:
        problems += _problem((*f, "width"), "A box's width must be more than 0")
    if h <= 0:
        problems += _problem((*f, "height"), "A box's height must be more than 0")
    if x < 0:
        problems += _problem((*f, "x"), "A box must start inside the image (x ≥ 0)")
    if y < 0:
        problems += _problem((*f, "y"), "A box must start inside the image (y ≥ 0)")
    if width is not None and x + w > width:
        problems += _problem(
            (*f, "width"), f"The box ends at x {x + w:g}, past the image's {width}"
        )
    if height is not None and y + h > height:
        problems += _problem(
            (*f, "height"), f"The box ends at y {y + h:g}, past the image's {height}"
        )
    return problems


def _point(
    point: Any, size: int, width: int | None, height: int | None, field: FieldPath
) -> list[Problem]:
    if not isinstance(point, list) or len(point) != size or not all(map(_number, point[:2])):
        shape = "[x, y]" if size == 2 else "[x, y, v]"
        return _problem(field, f"A point is {shape} with numbers")
    x, y = float(point[0]), float(point[1])
    if x < 0 or y < 0 or (width is not None and x > width) or (height is not None and y > height):
        return _problem(field, f"The point ({x:g}, {y:g}) is outside the image")
    return []


def _ring(ring: Any, width: int | None, height: int | None, field: FieldPath) -> list[Problem]:
    if not isinstance(ring, list) or len(ring) < 3:
        return _problem(field, "A polygon ring needs at least 3 points")
    if len(ring) > MAX_POINTS:
        return _problem(field, f"A ring has at most {MAX_POINTS} points")
    for i, point in enumerate(ring):
        problems = _point(point, 2, width, height, (*field, str(i)))
        if problems:
            return problems
    return []


def _polygon(
    g: dict[str, Any], width: int | None, height: int | None, f: FieldPath
) -> list[Problem]:
    problems = _unexpected(g, {"points", "rings"}, f)
    if problems:
        return problems
    if ("points" in g) == ("rings" in g):
        return _problem(f, "A polygon has either 'points' (one ring) or 'rings'")
    if "points" in g:
        return _ring(g["points"], width, height, (*f, "points"))
    rings = g["rings"]
    if not isinstance(rings, list) or not rings:
        return _problem((*f, "rings"), "'rings' is a non-empty list of point lists")
    for i, ring in enumerate(rings):
        problems = _ring(ring, width, height, (*f, "rings", str(i)))
        if problems:
            return problems
    return []


def _keypoints(
    g: dict[str, Any], width: int | None, height: int | None, f: FieldPath, skeleton: Any
) -> list[Problem]:
    problems = _unexpected(g, {"points"}, f)
    points = g.get("points")
    if problems:
        return problems
    if not isinstance(points, list) or not points:
        return _problem((*f, "points"), "Keypoints need 'points': [[x, y, v], …]")
    names = skeleton.get("names") if isinstance(skeleton, dict) else None
    if isinstance(names, list) and len(points) != len(names):
        return _problem(
            (*f, "points"), f"The label's skeleton has {len(names)} points; {len(points)} given"
        )
    for i, point in enumerate(points):
        field = (*f, "points", str(i))
        if not isinstance(point, list) or len(point) != 3 or point[2] not in (0, 1, 2):
            return _problem(field, "A keypoint is [x, y, v] with v 0, 1 or 2")
        if isinstance(point[2], bool):
            return _problem(field, "A keypoint is [x, y, v] with v 0, 1 or 2")
        if point[2] == 0:
            if not all(map(_number, point[:2])):
                return _problem(field, "A keypoint is [x, y, v] with numbers")
            continue
        problems = _point(point, 3, width, height, field)
        if problems:
            return problems
    return []


def _mask(g: dict[str, Any], width: int | None, height: int | None, f: FieldPath) -> list[Problem]:
    problems = _unexpected(g, {"size", "counts"}, f)
    if problems:
        return problems
    size = g.get("size")
    if not isinstance(size, list) or len(size) != 2 or not all(_integer(n) and n > 0 for n in size):
        return _problem((*f, "size"), "A mask's size is [height, width] in pixels")
    if (height is not None and size[0] != height) or (width is not None and size[1] != width):
        return _problem(
            (*f, "size"), f"The mask is {size[0]}x{size[1]}; the image is {height}x{width}"
        )
    counts = g.get("counts")
    if isinstance(counts, str):
        try:
            runs = decode_rle_counts(counts)
        except ValueError as error:
            return _problem((*f, "counts"), f"Not COCO compressed RLE: {error}")
    elif isinstance(counts, list) and all(_integer(n) and n >= 0 for n in counts):
        runs = counts
    else:
        return _problem((*f, "counts"), "counts is a list of run lengths or a COCO RLE string")
    total = sum(runs)
    if total != size[0] * size[1]:
        return _problem(
            (*f, "counts"), f"The runs cover {total} pixels; the mask has {size[0] * size[1]}"
        )
    return []


def decode_rle_counts(text: str) -> list[int]:
    """COCO's compressed RLE string (pycocotools ``rleFrString``) as run lengths."""
    runs: list[int] = []
    position = 0
    while position < len(text):
        value = 0
        shift = 0
        more = True
        while more:
            if position >= len(text):
                raise ValueError("the string ends inside a number")
            c = ord(text[position]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"unexpected character {text[position]!r}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            position += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError("a run length is negative")
        runs.append(value)
    return runs


def _span(g: dict[str, Any], f: FieldPath, text: str | None) -> list[Problem]:
    problems = _unexpected(g, {"start", "end", "text"}, f)
    for key in ("start", "end"):
        if not _integer(g.get(key)) or g[key] < 0:
            problems += _problem((*f, key), f"A span needs a whole number {key!r} ≥ 0")
    if "text" in g and not isinstance(g["text"], str):
        problems += _problem((*f, "text"), "text is the covered text, a string")
    if problems:
        return problems
    start, end = g["start"], g["end"]
    if end <= start:
        return _problem((*f, "end"), "A span's end must be after its start")
    if text is not None:
        if end > len(text):
            return _problem((*f, "end"), f"The span ends at {end}; the text has {len(text)}")
        if "text" in g and text[start:end] != g["text"]:
            return _problem(
                (*f, "text"),
                f"The file has {text[start:end]!r} at {start}..{end}, not {g['text']!r}",
            )
    return []


def check_attribute_schema(schema: Any, field: FieldPath) -> list[Problem]:
    """Problems with a label's attribute schema: ``[{name, type, values?, required?}, …]``."""
    if schema is None:
        return []
    if not isinstance(schema, list) or len(schema) > MAX_ATTRIBUTES:
        return _problem(
            field, f"attributes is a list of up to {MAX_ATTRIBUTES} {{name, type}} objects"
        )
    names: set[str] = set()
    for i, spec in enumerate(schema):
        at = (*field, str(i))
        if not isinstance(spec, dict):
            return _problem(at, "An attribute is an object {name, type, values?, required?}")
        extra = sorted(set(spec) - {"name", "type", "values", "required", "description"})
        if extra:
            return _problem((*at, extra[0]), f"Unknown attribute key {extra[0]!r}")
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            return _problem((*at, "name"), "An attribute needs a name of 1-64 characters")
        if name in names:
            return _problem((*at, "name"), f"Two attributes are named {name!r}")
        names.add(name)
        if spec.get("type") not in ATTRIBUTE_TYPES:
            return _problem((*at, "type"), f"type is one of {', '.join(ATTRIBUTE_TYPES)}")
        values = spec.get("values")
        if spec["type"] == "enum":
            if not isinstance(values, list) or not values:
                return _problem((*at, "values"), "An enum attribute lists its allowed values")
        elif values is not None:
            return _problem((*at, "values"), "Only enum attributes list values")
        if not isinstance(spec.get("required", False), bool):
            return _problem((*at, "required"), "required is true or false")
    return []


def validate_attributes(schema: Any, attributes: Any, field: FieldPath) -> list[Problem]:
    """Problems with an annotation's ``attributes`` under its label's schema."""
    specs = {spec["name"]: spec for spec in schema} if isinstance(schema, list) else {}
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        return _problem(field, "attributes is an object of name: value")
    problems: list[Problem] = []
    for name, value in attributes.items():
        spec = specs.get(name)
        at = (*field, name)
        if spec is None:
            problems += _problem(at, f"The label has no attribute {name!r}")
        elif not _fits(spec, value):
            problems += _problem(at, f"{name!r} must be {_expected(spec)}")
    for name, spec in specs.items():
        if spec.get("required") and name not in attributes:
            problems += _problem((*field, name), f"{name!r} is required by the label")
    return problems


def _fits(spec: dict[str, Any], value: Any) -> bool:
    kind = spec["type"]
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return _number(value)
    if kind == "integer":
        return _integer(value)
    if kind == "boolean":
        return isinstance(value, bool)
    return value in spec.get("values", []) and not isinstance(value, bool | dict | list)


def _expected(spec: dict[str, Any]) -> str:
    if spec["type"] == "enum":
        return "one of " + ", ".join(repr(v) for v in spec["values"])
    return {"integer": "a whole number", "boolean": "true or false"}.get(
        spec["type"], f"a {spec['type']}"
    )


def check_skeleton(kind: LabelKind, skeleton: Any, field: FieldPath) -> list[Problem]:
    """Problems with a keypoint skeleton ``{names: [...], edges: [[i, j], ...]}`` (0-based)."""
    if skeleton is None:
        return []
    if kind != LabelKind.KEYPOINTS:
        return _problem(field, "Only KEYPOINTS labels have a skeleton")
    if not isinstance(skeleton, dict) or set(skeleton) - {"names", "edges"}:
        return _problem(field, "A skeleton is {names: [...], edges: [[i, j], ...]}")
    names = skeleton.get("names")
    if (
        not isinstance(names, list)
        or not names
        or len(names) > MAX_SKELETON
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        return _problem((*field, "names"), "names is a list of distinct point names")
    edges: Sequence[Any] = skeleton.get("edges", [])
    if not isinstance(edges, list):
        return _problem((*field, "edges"), "edges is a list of [i, j] index pairs")
    for i, edge in enumerate(edges):
        if (
            not isinstance(edge, list)
            or len(edge) != 2
            or not all(_integer(n) and 0 <= n < len(names) for n in edge)
        ):
            return _problem(
                (*field, "edges", str(i)), f"An edge is [i, j] with 0 ≤ i, j < {len(names)}"
            )
    return []
