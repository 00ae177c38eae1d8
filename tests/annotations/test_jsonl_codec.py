"""Quiver JSON Lines: lossless both ways, no database."""

from __future__ import annotations

import io

import pytest

from quiver.annotations import jsonl
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    write_all,
)
from quiver.annotations.report import LossReport

LABELS = [
    LabelDef("animal", "CLASSIFICATION", color="#00ff00"),
    LabelDef(
        "cat",
        "KEYPOINTS",
        attributes=[{"name": "occluded", "type": "boolean"}],
        skeleton={"names": ["nose", "tail"], "edges": [[0, 1]]},
        parent="animal",
    ),
    LabelDef("name", "TEXT_SPAN"),
]
SAMPLES = [
    SampleRecord(
        "images/a.jpg",
        640,
        480,
        [
            AnnotationRecord("animal"),
            AnnotationRecord(
                "cat",
                {"points": [[1.5, 2, 2], [0, 0, 0]]},
                score=0.25,
                attributes={"occluded": True},
                model="pose@2",
            ),
        ],
        status="REVIEWED",
        hard_example=True,
        metadata={"camera": "n°7"},
    ),
    SampleRecord(
        "table.csv", row=3, annotations=[AnnotationRecord("name", {"start": 0, "end": 4})]
    ),
    SampleRecord("images/b.jpg", 10, 10, status="UNLABELED", hard_example=False),
]


def _read(data: bytes) -> tuple[list[LabelDef], list[SampleRecord]]:
    labels: list[LabelDef] = []
    samples: list[SampleRecord] = []
    for item in jsonl.read(io.BytesIO(data), LossReport()):
        (labels if isinstance(item, LabelDef) else samples).append(item)  # type: ignore[arg-type]
    return labels, samples


def test_round_trip_keeps_every_field() -> None:
    report = LossReport()
    data = b"".join(write_all(jsonl.JsonLinesWriter(LABELS, report), [SAMPLES[:2], SAMPLES[2:]]))
    labels, samples = _read(data)

    assert labels == LABELS
    assert samples == SAMPLES
    assert len(data.splitlines()) == len(LABELS) + len(SAMPLES)
    assert not report


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{\n", "line 1: not JSON"),
        (b"\n[1]\n", "line 2: each line must be a JSON object"),
        (b'{"label": {"kind": "POLYGON"}}\n', "line 1: a label needs a name"),
        (b'{"path": "a", "annotations": [{"geometry": {}}]}\n', "line 1: an annotation needs"),
        (
            b'{"path": "a", "annotations": [{"label": "x", "score": "hi"}]}',
            "score must be a number",
        ),
    ],
)
def test_import_refuses_malformed_lines_with_their_number(document: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _read(document)
