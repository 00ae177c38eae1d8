"""Label Studio JSON: a list of tasks with human ``annotations`` and model ``predictions``.

Regions are written in Label Studio's percent coordinates (0-100 of the image size):
boxes as ``rectanglelabels``, polygons as ``polygonlabels``, keypoints as one
``keypointlabels`` region per labelled point, text spans as ``labels``, and image-level
labels as one ``choices`` region. Control names are ``label`` (regions), ``choice``
(choices) over ``image`` (or ``text`` for spans). Masks are not written: Label Studio's
brush RLE is not COCO's.

The import streams the task list twice: first to learn the labels and their kinds, then
task by task. ``data.image`` (or the task's first string value) names the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

import ijson

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
    rings_of,
    shape_of,
)
from quiver.annotations.report import LossReport

REGION_KINDS = {
    "rectanglelabels": "BOUNDING_BOX",
    "polygonlabels": "POLYGON",
    "keypointlabels": "KEYPOINTS",
    "labels": "TEXT_SPAN",
    "choices": "CLASSIFICATION",
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pct(value: float, size: int) -> float | int:
    return number(float(value) * 100 / size)


class LabelStudioWriter(Writer):
    media_type = "application/json"
    extension = "json"

    def __init__(self, labels: Iterable[LabelDef], report: LossReport) -> None:
        self.labels = {label.name: label for label in labels}
        self.report = report
        self.task_id = 0

    def start(self) -> bytes:
        return b"["

    def write(self, samples: list[SampleRecord]) -> bytes:
        tasks = [_dumps(self._task(sample)) for sample in samples]
        if not tasks:
            return b""
        comma = "," if self.task_id > len(tasks) else ""
        return (comma + ",".join(tasks)).encode()

    def finish(self) -> Iterator[bytes]:
        yield b"]"

    def _task(self, sample: SampleRecord) -> dict[str, Any]:
        self.task_id += 1
        human: list[AnnotationRecord] = []
        models: dict[str, list[AnnotationRecord]] = {}
        for annotation in sample.annotations:
            if annotation.model is not None:
                models.setdefault(annotation.model, []).append(annotation)
            else:
                human.append(annotation)
        task: dict[str, Any] = {"id": self.task_id, "data": {"image": sample.path}}
        if human:
            task["annotations"] = [{"result": self._results(human, sample)}]
        if models:
            task["predictions"] = [
                _prediction(model, self._results(annotations, sample))
                for model, annotations in models.items()
            ]
        return task

    def _results(
        self, annotations: list[AnnotationRecord], sample: SampleRecord
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        choices: list[str] = []
        choice_scores: list[float] = []
        for annotation in annotations:
            label = self.labels.get(annotation.label)
            shape = shape_of(label.kind if label else None, annotation.geometry)
            if shape == "none":
                choices.append(annotation.label)
                if annotation.score is not None:
                    choice_scores.append(annotation.score)
                continue
            if shape == "span":
                span = annotation.geometry or {}
                value = {"start": span["start"], "end": span["end"], "labels": [annotation.label]}
                results.append(self._region("labels", value, annotation, None, to_name="text"))
                continue
            if shape == "mask":
                self.report.add(
                    "MASK_DROPPED",
                    "1 mask dropped: Label Studio brushes use their own RLE",
                    "{n} masks dropped: Label Studio brushes use their own RLE",
                )
                continue
            if not sample.width or not sample.height:
                self.report.add(
                    "SIZE_UNKNOWN_DROPPED",
                    "1 region on an image of unknown size dropped: Label Studio needs percents",
                    "{n} regions on images of unknown size dropped: Label Studio needs percents",
                )
                continue
            results.extend(self._regions(shape, annotation, label, sample.width, sample.height))
        if choices:
            chosen: dict[str, Any] = {"choices": choices}
            region = self._region("choices", chosen, None, None, from_name="choice")
            if choice_scores:
                region["score"] = min(choice_scores)
            results.append(region)
        for index, result in enumerate(results, start=1):
            result["id"] = f"{self.task_id}-{index}"
        return results

    def _regions(
        self,
        shape: str,
        annotation: AnnotationRecord,
        label: LabelDef | None,
        width: int,
        height: int,
    ) -> list[dict[str, Any]]:
        geometry = annotation.geometry or {}
        size = (width, height)
        if shape == "box":
            value = {
                "x": _pct(geometry["x"], width),
                "y": _pct(geometry["y"], height),
                "width": _pct(geometry["width"], width),
                "height": _pct(geometry["height"], height),
                "rotation": number(float(geometry.get("rotation", 0))),
                "rectanglelabels": [annotation.label],
            }
            return [self._region("rectanglelabels", value, annotation, size)]
        if shape == "polygon":
            rings = rings_of(geometry)
            if len(rings) > 1:
                self.report.add(
                    "RINGS_SPLIT",
                    "1 polygon with several rings written as one region per ring",
                    "{n} polygons with several rings written as one region per ring",
                )
            return [
                self._region(
                    "polygonlabels",
                    {
                        "points": [[_pct(p[0], width), _pct(p[1], height)] for p in ring],
                        "closed": True,
                        "polygonlabels": [annotation.label],
                    },
                    annotation,
                    size,
                )
                for ring in rings
            ]
        points = geometry.get("points") or []
        names = list(((label.skeleton if label else None) or {}).get("names") or [])
        if len(points) > 1:
            self.report.add(
                "KEYPOINTS_SPLIT",
                "1 keypoint set written as one region per point (named by the skeleton)",
                "{n} keypoint sets written as one region per point (named by the skeleton)",
            )
        regions = []
        for i, point in enumerate(points):
            if point[2] <= 0:
                continue
            name = annotation.label if len(points) == 1 else _point_name(annotation.label, names, i)
            value = {
                "x": _pct(point[0], width),
                "y": _pct(point[1], height),
                "keypointlabels": [name],
            }
            regions.append(self._region("keypointlabels", value, annotation, size))
        return regions

    @staticmethod
    def _region(
        kind: str,
        value: dict[str, Any],
        annotation: AnnotationRecord | None,
        size: tuple[int, int] | None,
        from_name: str = "label",
        to_name: str = "image",
    ) -> dict[str, Any]:
        region: dict[str, Any] = {"from_name": from_name, "to_name": to_name, "type": kind}
        if size is not None:
            region["original_width"], region["original_height"] = size
            region["image_rotation"] = 0
        region["value"] = value
        if annotation is not None and annotation.score is not None:
            region["score"] = annotation.score
        if annotation is not None and annotation.attributes:
            region["meta"] = {"attributes": annotation.attributes}
        return region


def _point_name(label: str, names: list[str], index: int) -> str:
    return names[index] if index < len(names) else f"{label} {index + 1}"


def _prediction(model: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    prediction: dict[str, Any] = {"model_version": model, "result": results}
    scores = [r["score"] for r in results if "score" in r]
    if scores:
        prediction["score"] = min(scores)
    return prediction


def _tasks(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    stream.seek(0)
    try:
        for task in ijson.items(stream, "item", use_float=True):
            if not isinstance(task, dict):
                raise FormatError("each task must be an object")
            yield task
    except ijson.JSONError as problem:
        raise FormatError(f"not valid JSON: {problem}") from None
    except ijson.IncompleteJSONError as problem:
        raise FormatError(f"not valid JSON: {problem}") from None


def _result_sets(task: dict[str, Any]) -> Iterator[tuple[str | None, list[Any]]]:
    """(model or None, regions) for each annotation and prediction of a task."""
    for annotation in task.get("annotations") or []:
        if isinstance(annotation, dict) and not annotation.get("was_cancelled"):
            yield None, annotation.get("result") or []
    for prediction in task.get("predictions") or []:
        if isinstance(prediction, dict):
            model = prediction.get("model_version")
            yield (
                (str(model) if model not in (None, "") else "unknown"),
                prediction.get("result") or [],
            )


def _region_labels(region: dict[str, Any]) -> list[str]:
    value = region.get("value") or {}
    kind = region.get("type")
    names = value.get(kind) if isinstance(kind, str) else None
    if not isinstance(names, list) and kind == "rectangle":
        names = value.get("labels")
    return [str(n) for n in names] if isinstance(names, list) else []


def _path(task: dict[str, Any], where: str) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        raise FormatError(f"{where}: data is missing")
    value = data.get("image")
    if not isinstance(value, str):
        value = next((v for v in data.values() if isinstance(v, str)), None)
    if value is None:
        raise FormatError(f"{where}: data names no file")
    parts = urlsplit(value)
    local = parse_qs(parts.query).get("d")
    if parts.path.endswith("/data/local-files/") and local:
        return local[0].lstrip("/")
    if parts.scheme in ("s3", "gs", "azure-blob"):
        return unquote(parts.path).lstrip("/")
    return unquote(parts.path if parts.scheme else value).lstrip("/")


def read(stream: IO[bytes], report: LossReport) -> Iterator[LabelDef | SampleRecord]:
    """Labels (the kind of each name's first region), then one sample per task."""
    kinds: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for task in _tasks(stream):
        for _, regions in _result_sets(task):
            for region in regions:
                if not isinstance(region, dict):
                    continue
                meta = region.get("meta")
                given = meta.get("attributes") if isinstance(meta, dict) else None
                if not isinstance(given, dict):
                    given = {}
                for name in _region_labels(region):
                    types = attributes.setdefault(name, {})
                    for key, value in given.items():
                        kind_of_value = attribute_type(value)
                        if kind_of_value is not None:
                            types.setdefault(key, kind_of_value)
                kind = REGION_KINDS.get(str(region.get("type")))
                if region.get("type") == "rectangle":
                    kind = "BOUNDING_BOX"
                for name in _region_labels(region) if kind else []:
                    kinds.setdefault(name, kind or "CLASSIFICATION")
    for name, kind in kinds.items():
        yield LabelDef(name, kind, attributes=attribute_schema(attributes.get(name, {})))
    for number_, task in enumerate(_tasks(stream), start=1):
        where = f"task {task.get('id', number_)}"
        sample = SampleRecord(path=_path(task, where))
        _size(task, sample)
        for model, regions in _result_sets(task):
            for region in regions:
                if isinstance(region, dict):
                    sample.annotations.extend(_annotations(region, model, kinds, sample, report))
        yield sample


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _size(task: dict[str, Any], sample: SampleRecord) -> None:
    """The image size any region of the task gives; none: coordinates stay percents until
    the importer knows the image's size."""
    for _, regions in _result_sets(task):
        for region in regions:
            if not isinstance(region, dict):
                continue
            width: Any = region.get("original_width")
            height: Any = region.get("original_height")
            if _positive(width) and _positive(height):
                sample.width, sample.height = int(width), int(height)
                return
    sample.scale = 100.0


def _annotations(
    region: dict[str, Any],
    model: str | None,
    kinds: dict[str, str],
    sample: SampleRecord,
    report: LossReport,
) -> list[AnnotationRecord]:
    kind = str(region.get("type"))
    value = region.get("value") or {}
    score = region.get("score")
    meta = region.get("meta")
    attributes = meta.get("attributes") if isinstance(meta, dict) else None
    names = _region_labels(region)
    if kind not in REGION_KINDS and kind != "rectangle":
        report.add(
            f"{kind.upper()}_DROPPED",
            f"1 {kind} region dropped: Quiver has no such annotation",
            f"{{n}} {kind} regions dropped: Quiver has no such annotation",
        )
        return []
    records = []
    if sample.scale is None and sample.width and sample.height:
        sx, sy = sample.width / 100, sample.height / 100
    else:
        sx = sy = 1.0
    for name in names:
        record = AnnotationRecord(
            name,
            score=float(score) if isinstance(score, int | float) else None,
            attributes=attributes if isinstance(attributes, dict) else None,
            model=model,
        )
        geometry = _geometry(kind, value, sx, sy, report)
        label_kind = kinds.get(name)
        if geometry is not None and label_kind is not None:
            geometry = _fitted(geometry, label_kind, report)
        record.geometry = geometry
        records.append(record)
    return records


def _geometry(
    kind: str, value: dict[str, Any], sx: float, sy: float, report: LossReport
) -> dict[str, Any] | None:
    try:
        if kind in ("rectanglelabels", "rectangle"):
            box = {
                "x": number(float(value["x"]) * sx),
                "y": number(float(value["y"]) * sy),
                "width": number(float(value["width"]) * sx),
                "height": number(float(value["height"]) * sy),
            }
            if value.get("rotation"):
                box["rotation"] = number(float(value["rotation"]))
            return box
        if kind == "polygonlabels":
            points = [[number(float(x) * sx), number(float(y) * sy)] for x, y in value["points"]]
            return {"points": points}
        if kind == "keypointlabels":
            return {"points": [[number(float(value["x"]) * sx), number(float(value["y"]) * sy), 2]]}
        if kind == "labels":
            return {"start": int(value["start"]), "end": int(value["end"])}
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"a {kind} region without its coordinates") from None
    return None


def _fitted(geometry: dict[str, Any], label_kind: str, report: LossReport) -> dict[str, Any] | None:
    """A region of another shape than its label's first one, made to fit where it can."""
    shape = shape_of(None, geometry)
    expected = shape_of(label_kind, geometry)
    if shape == expected:
        return geometry
    if shape == "box" and expected == "polygon":
        x, y, w, h = (geometry[k] for k in ("x", "y", "width", "height"))
        return {"points": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]}
    if shape == "polygon" and expected == "box":
        report.add(
            "POLYGON_AS_BOX",
            "1 polygon reduced to its box: its label holds boxes",
            "{n} polygons reduced to their boxes: their labels hold boxes",
        )
        return box_of_points(geometry["points"])
    raise FormatError(f"a label is used for both {shape} and {expected} regions")
