"""Annotation interchange: COCO, YOLO, Label Studio and Quiver JSON Lines, both ways.

Pure, database-free codecs over a small intermediate form (`records`): exporters turn
pages of samples into bytes chunks, importers turn a file into labels then samples, and
both note in a `LossReport` what the other format could not hold.
"""

from __future__ import annotations

from quiver.annotations.records import AnnotationRecord, LabelDef, SampleRecord, shape_of
from quiver.annotations.report import LossReport

FORMATS = ("coco", "yolo", "labelstudio", "jsonl")

__all__ = ["FORMATS", "AnnotationRecord", "LabelDef", "LossReport", "SampleRecord", "shape_of"]
