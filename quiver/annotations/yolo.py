"""YOLO in the Ultralytics layout: ``data.yaml`` and one ``labels/….txt`` per image.

The export is a zip written while it is sent. Its task follows the labels: any keypoint
label makes it ``pose`` (``cls cx cy w h px py v …``), else any polygon or mask label
``segment`` (``cls x1 y1 … xn yn``), else ``detect`` (``cls cx cy w h``); coordinates are
fractions of the image size. An image ``…/images/a/b.jpg`` gets ``…/labels/a/b.txt``
(Ultralytics' own rule); an image under no ``images/`` folder gets ``labels/<path>.txt``.
Every image gets its file, empty when it has no objects.

The import takes such a zip: classes from ``data.yaml`` ``names``, one sample per label
file (matched to the image of the same name with any image extension), coordinates turned
into pixels with the image's size.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import yaml

from quiver.annotations import rle
from quiver.annotations.records import (
    AnnotationRecord,
    FormatError,
    LabelDef,
    SampleRecord,
    Writer,
    box_of_points,
    rings_of,
    shape_of,
    without_box,
)
from quiver.annotations.report import LossReport

IMAGE_EXTENSIONS = ("bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm")
MAX_LABEL_FILE = 64 * 1024 * 1024


def label_path(image_path: str) -> str:
    """Where Ultralytics looks for an image's labels."""
    stem = image_path.rsplit(".", 1)[0] if "." in image_path.rsplit("/", 1)[-1] else image_path
    if stem.startswith("images/"):
        return "labels/" + stem[len("images/") :] + ".txt"
    if "/images/" in stem:
        head, tail = stem.rsplit("/images/", 1)
        return f"{head}/labels/{tail}.txt"
    return f"labels/{stem}.txt"


def image_stem(label_file: str) -> str:
    """The image path (without extension) a label file names: the inverse of label_path."""
    stem = label_file[: -len(".txt")]
    if stem.startswith("labels/"):
        return "images/" + stem[len("labels/") :]
    if "/labels/" in stem:
        head, tail = stem.rsplit("/labels/", 1)
        return f"{head}/images/{tail}"
    return stem


def _fmt(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Sink:
    """An unseekable file whose bytes are taken out after each write."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class YoloWriter(Writer):
    media_type = "application/zip"
    extension = "zip"

    def __init__(self, labels: Iterable[LabelDef], report: LossReport) -> None:
        self.labels = list(labels)
        self.report = report
        kinds = {label.kind for label in self.labels}
        if "KEYPOINTS" in kinds:
            self.task = "pose"
            wanted = {"KEYPOINTS"}
        elif kinds & {"POLYGON", "SEGMENTATION_MASK"}:
            self.task = "segment"
            wanted = {"POLYGON", "SEGMENTATION_MASK", "BOUNDING_BOX"}
        else:
            self.task = "detect"
            wanted = {"BOUNDING_BOX"}
        classes = [label for label in self.labels if label.kind in wanted]
        self.classes = {label.name: i for i, label in enumerate(classes)}
        self.kinds = {label.name: label.kind for label in self.labels}
        self.keypoints = max(
            (len((label.skeleton or {}).get("names") or []) for label in classes), default=0
        )
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)

    def write(self, samples: list[SampleRecord]) -> bytes:
        for sample in samples:
            if not sample.width or not sample.height:
                self.report.add(
                    "SIZE_UNKNOWN_SKIPPED",
                    "1 image without a known size skipped: YOLO needs it to normalise",
                    "{n} images without a known size skipped: YOLO needs it to normalise",
                )
                continue
            lines = []
            for annotation in sample.annotations:
                lines.extend(self._lines(annotation, sample.width, sample.height))
            text = "".join(line + "\n" for line in lines)
            self.zip.writestr(label_path(sample.path), text)
        return self.sink.take()

    def _lines(self, annotation: AnnotationRecord, width: int, height: int) -> list[str]:
        kind = self.kinds.get(annotation.label)
        geometry = annotation.geometry
        shape = shape_of(kind, geometry)
        cls = self.classes.get(annotation.label)
        if cls is None or geometry is None:
            self._dropped(shape)
            return []
        if shape == "box" and self.task == "segment":
            self.report.add(
                "BOX_AS_POLYGON",
                "1 box written as a rectangle polygon in a YOLO segment dataset",
                "{n} boxes written as rectangle polygons in a YOLO segment dataset",
            )
            x, y, w, h = (float(geometry[k]) for k in ("x", "y", "width", "height"))
            geometry = {"points": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]}
            shape = "polygon"
        if shape == "box":
            if geometry.get("rotation"):
                self.report.add(
                    "ROTATION_DROPPED",
                    "rotation dropped for 1 box",
                    "rotation dropped for {n} boxes",
                )
            return [f"{cls} " + " ".join(_fmt(v) for v in _centre_box(geometry, width, height))]
        if shape == "mask" and self.task == "segment":
            traced, holes = rle.traced_rings(geometry)
            self.report.add(
                "MASK_AS_POLYGON",
                "1 mask written as polygons traced along its pixel borders",
                "{n} masks written as polygons traced along their pixel borders",
            )
            self.report.add(
                "HOLES_DROPPED",
                "1 hole in a mask dropped: a YOLO polygon cannot hold one",
                "{n} holes in masks dropped: a YOLO polygon cannot hold them",
                n=holes,
            )
            if not traced:
                return []
            geometry = {"rings": traced}
            shape = "polygon"
        if shape == "polygon":
            rings = rings_of(geometry)
            if len(rings) > 1:
                self.report.add(
                    "RINGS_SPLIT",
                    "1 polygon with several rings written as one line per ring",
                    "{n} polygons with several rings written as one line per ring",
                )
            return [
                f"{cls} " + " ".join(f"{_fmt(p[0] / width)} {_fmt(p[1] / height)}" for p in ring)
                for ring in rings
            ]
        if shape == "keypoints":
            points = [list(p) for p in geometry["points"]]
            if len(points) != self.keypoints:
                self.report.add(
                    "KEYPOINTS_PADDED",
                    f"1 keypoint set padded or cut to {self.keypoints} points",
                    f"{{n}} keypoint sets padded or cut to {self.keypoints} points",
                )
                points = (points + [[0, 0, 0]] * self.keypoints)[: self.keypoints]
            labelled = [p for p in points if p[2] > 0]
            box = geometry.get("box") or (box_of_points(labelled) if labelled else None)
            centre = _centre_box(box, width, height) if box else [0.0, 0.0, 0.0, 0.0]
            coordinates = " ".join(
                f"{_fmt(p[0] / width)} {_fmt(p[1] / height)} {int(p[2])}" if p[2] > 0 else "0 0 0"
                for p in points
            )
            return [f"{cls} " + " ".join(_fmt(v) for v in centre) + " " + coordinates]
        self._dropped(shape)
        return []

    def _dropped(self, shape: str) -> None:
        what = {
            "none": "image-level label",
            "span": "text span",
            "mask": "mask",
            "box": "box",
            "polygon": "polygon",
            "keypoints": "keypoint set",
        }[shape]
        plural = what + ("es" if what.endswith("x") else "s")
        self.report.add(
            f"{shape.upper()}_DROPPED",
            f"1 {what} dropped: a YOLO {self.task} dataset cannot hold it",
            f"{{n}} {plural} dropped: a YOLO {self.task} dataset cannot hold them",
        )

    def finish(self) -> Iterator[bytes]:
        data: dict[str, Any] = {
            "path": ".",
            "train": "images",
            "val": "images",
            "names": {i: name for name, i in self.classes.items()},
        }
        if self.task == "pose":
            data["kpt_shape"] = [self.keypoints, 3]
        header = f"# Exported by Quiver (task: {self.task})\n"
        self.zip.writestr("data.yaml", header + yaml.safe_dump(data, sort_keys=False))
        if self.report:
            self.zip.writestr("losses.txt", "".join(line + "\n" for line in self.report.lines()))
        self.zip.close()
        yield self.sink.take()

    def close(self) -> None:
        self.sink.parts.clear()


def _centre_box(box: dict[str, Any], width: int, height: int) -> list[float]:
    x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def _names(data: Any) -> list[str]:
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return [str(name) for name in names]
    if isinstance(names, dict):
        try:
            indexes = sorted(int(i) for i in names)
        except (TypeError, ValueError):
            raise FormatError("data.yaml: names must be a list or map class numbers") from None
        if indexes != list(range(len(indexes))):
            raise FormatError("data.yaml: class numbers must run 0, 1, 2, …")
        return [str(names[i] if i in names else names[str(i)]) for i in indexes]
    raise FormatError("data.yaml: names is missing")


def _numbers(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise FormatError(f"{where}: not a number") from None


def read(stream: IO[bytes], report: LossReport) -> Iterator[LabelDef | SampleRecord]:
    """Labels from data.yaml, then one sample per label file (pixels need the image size)."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise FormatError("a YOLO import is a zip of data.yaml and labels/*.txt") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        yaml_files = [m for m in members if m.filename.rsplit("/", 1)[-1] == "data.yaml"]
        if len(yaml_files) != 1:
            raise FormatError("the zip needs exactly one data.yaml")
        root = yaml_files[0].filename[: -len("data.yaml")]
        try:
            data = yaml.safe_load(archive.read(yaml_files[0]))
        except yaml.YAMLError:
            raise FormatError("data.yaml is not YAML") from None
        names = _names(data)
        keypoints = _keypoint_shape(data)
        label_files = [
            m for m in members if m.filename.endswith(".txt") and m.filename.startswith(root)
        ]
        for member in label_files:
            if member.file_size > MAX_LABEL_FILE:
                raise FormatError(f"{member.filename}: larger than {MAX_LABEL_FILE} bytes")
        polygons = _classes_with_polygons(archive, label_files, len(names), keypoints)
        for i, name in enumerate(names):
            if keypoints is not None:
                skeleton = {"names": [str(k) for k in range(keypoints[0])], "edges": []}
                yield LabelDef(name, "KEYPOINTS", skeleton=skeleton)
            else:
                yield LabelDef(name, "POLYGON" if i in polygons else "BOUNDING_BOX")
        for member in label_files:
            path = image_stem(member.filename[len(root) :])
            sample = SampleRecord(path=path, scale=1.0, stem=True)
            text = archive.read(member).decode("utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), start=1):
                tokens = line.split()
                if not tokens:
                    continue
                where = f"{member.filename} line {number}"
                sample.annotations.append(
                    _annotation(tokens, names, keypoints, polygons, where, report)
                )
            yield sample


def _keypoint_shape(data: Any) -> tuple[int, int] | None:
    shape = data.get("kpt_shape") if isinstance(data, dict) else None
    if shape is None:
        return None
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(v, int) for v in shape)
        or shape[1] not in (2, 3)
        or shape[0] < 1
    ):
        raise FormatError("data.yaml: kpt_shape must be [points, 2 or 3]")
    return shape[0], shape[1]


def _classes_with_polygons(
    archive: zipfile.ZipFile,
    members: list[zipfile.ZipInfo],
    classes: int,
    keypoints: tuple[int, int] | None,
) -> set[int]:
    if keypoints is not None:
        return set()
    found: set[int] = set()
    for member in members:
        for line in archive.read(member).decode("utf-8", errors="replace").splitlines():
            tokens = line.split()
            if len(tokens) > 5 and tokens[0].isdigit():
                found.add(int(tokens[0]))
    return found


def _class(token: str, names: list[str], where: str) -> str:
    if not token.isdigit() or int(token) >= len(names):
        raise FormatError(f"{where}: class {token} is not in data.yaml names")
    return names[int(token)]


def _annotation(
    tokens: list[str],
    names: list[str],
    keypoints: tuple[int, int] | None,
    polygons: set[int],
    where: str,
    report: LossReport,
) -> AnnotationRecord:
    label = _class(tokens[0], names, where)
    values = _numbers(tokens[1:], where)
    if keypoints is not None:
        count, dims = keypoints
        if len(values) != 4 + count * dims:
            raise FormatError(f"{where}: a pose line needs 4 + {count} x {dims} numbers")
        cx, cy, w, h = values[:4]
        raw = values[4:]
        points = []
        for i in range(count):
            x, y = raw[i * dims], raw[i * dims + 1]
            visibility = int(raw[i * dims + 2]) if dims == 3 else (2 if x or y else 0)
            points.append([x, y, visibility] if visibility else [0, 0, 0])
        box = {"x": cx - w / 2, "y": cy - h / 2, "width": w, "height": h}
        return AnnotationRecord(label, without_box({"points": points, "box": box}, report))
    if len(values) == 4:
        cx, cy, w, h = values
        box = {"x": cx - w / 2, "y": cy - h / 2, "width": w, "height": h}
        if int(tokens[0]) in polygons:
            x0, y0 = box["x"], box["y"]
            corners = [[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]]
            return AnnotationRecord(label, {"points": corners})
        return AnnotationRecord(label, box)
    if len(values) < 6 or len(values) % 2:
        raise FormatError(f"{where}: a segment line needs an even count of at least 6 numbers")
    points = [[values[i], values[i + 1]] for i in range(0, len(values), 2)]
    return AnnotationRecord(label, {"points": points})
