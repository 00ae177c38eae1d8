"""Quiver JSON Lines: lossless. One label a line (``{"label": …}``), then one sample a line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    Writer,
)
from quiver.annotations.report import LossReport


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def label_line(label: LabelDef) -> dict[str, Any]:
    return _compact(
        {
            "name": label.name,
            "kind": label.kind,
            "color": label.color,
            "attributes": label.attributes,
            "skeleton": label.skeleton,
            "parent": label.parent,
        }
    )


def sample_line(sample: SampleRecord) -> dict[str, Any]:
    return _compact(
        {
            "path": sample.path,
            "row": sample.row,
            "width": sample.width,
            "height": sample.height,
            "status": sample.status,
            "hardExample": sample.hard_example,
            "metadata": sample.metadata,
            "annotations": [
                _compact(
                    {
                        "label": a.label,
                        "geometry": a.geometry,
                        "score": a.score,
                        "attributes": a.attributes,
                        "model": a.model,
                    }
                )
                for a in sample.annotations
            ],
        }
    )


class JsonLinesWriter(Writer):
    media_type = "application/x-ndjson"
    extension = "jsonl"

    def __init__(self, labels: Iterable[LabelDef], report: LossReport) -> None:
        self.labels = list(labels)
        self.report = report

    def start(self) -> bytes:
        return b"".join(_dumps({"label": label_line(label)}) for label in self.labels)

    def write(self, samples: list[SampleRecord]) -> bytes:
        return b"".join(_dumps(sample_line(sample)) for sample in samples)


def _label(raw: Any, line: int) -> LabelDef:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise FormatError(f"line {line}: a label needs a name")
    return LabelDef(
        name=raw["name"],
        kind=str(raw.get("kind", "CLASSIFICATION")),
        color=raw.get("color"),
        attributes=raw.get("attributes"),
        skeleton=raw.get("skeleton"),
        parent=raw.get("parent"),
    )


def _annotation(raw: Any, line: int) -> AnnotationRecord:
    if not isinstance(raw, dict) or not isinstance(raw.get("label"), str):
        raise FormatError(f"line {line}: an annotation needs a label name")
    score = raw.get("score")
    if score is not None and not isinstance(score, int | float):
        raise FormatError(f"line {line}: score must be a number")
    return AnnotationRecord(
        label=raw["label"],
        geometry=raw.get("geometry"),
        score=score,
        attributes=raw.get("attributes"),
        model=raw.get("model"),
    )


def _sample(raw: dict[str, Any], line: int) -> SampleRecord:
    if not isinstance(raw.get("path"), str):
        raise FormatError(f"line {line}: a sample needs a path")
    annotations = raw.get("annotations") or []
    if not isinstance(annotations, list):
        raise FormatError(f"line {line}: annotations must be a list")
    return SampleRecord(
        path=raw["path"],
        row=raw.get("row"),
        width=raw.get("width"),
        height=raw.get("height"),
        status=raw.get("status"),
        hard_example=raw.get("hardExample"),
        metadata=raw.get("metadata"),
        annotations=[_annotation(a, line) for a in annotations],
    )


def read(stream: IO[bytes], report: LossReport) -> Iterator[LabelDef | SampleRecord]:
    """Labels and samples in file order; labels may come anywhere before their first use."""
    for number, raw_line in enumerate(stream, start=1):
        if not raw_line.strip():
            continue
        try:
            value = json.loads(raw_line)
        except ValueError:
            raise FormatError(f"line {number}: not JSON") from None
        if not isinstance(value, dict):
            raise FormatError(f"line {number}: each line must be a JSON object")
        if "label" in value and "path" not in value:
            yield _label(value["label"], number)
        else:
            yield _sample(value, number)
