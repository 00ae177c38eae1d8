"""Annotations written beside pulled files, in the format asked for, from the server's
``GET /datasets|versions/{id}/annotations?format=…`` export. The server exports every sample;
a filtered pull keeps here only the entries of the files it pulled."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quiver.client.errors import QuiverError
from quiver.client.transport import raise_for_status

if TYPE_CHECKING:
    from quiver.client.client import Client

FORMATS = ("coco", "yolo", "jsonl", "labelstudio")
FILE_NAMES = {
    "coco": "annotations.coco.json",
    "jsonl": "annotations.jsonl",
    "labelstudio": "annotations.labelstudio.json",
}


def check_format(annotation_format: str) -> str:
    lowered = annotation_format.lower().replace("_", "")
    if lowered not in FORMATS:
        raise QuiverError(f"annotations must be one of {', '.join(FORMATS)}", code="INVALID")
    return lowered


def yolo_label_path(image_path: str) -> str:
    """Where Ultralytics looks for an image's labels (the server's rule, repeated here: the
    client imports nothing of the server)."""
    name = image_path.rsplit("/", 1)[-1]
    stem = image_path.rsplit(".", 1)[0] if "." in name else image_path
    if stem.startswith("images/"):
        return "labels/" + stem[len("images/") :] + ".txt"
    if "/images/" in stem:
        head, tail = stem.rsplit("/images/", 1)
        return f"{head}/labels/{tail}.txt"
    return f"labels/{stem}.txt"


def write_annotations(
    client: Client,
    export_url: str,
    directory: Path,
    annotation_format: str,
    paths: set[str] | None,
) -> list[Path]:
    """Fetch the export and write it under ``directory`` (YOLO: data.yaml and labels/…;
    else one file); only the samples at ``paths`` when given. The files written."""
    annotation_format = check_format(annotation_format)
    directory.mkdir(parents=True, exist_ok=True)
    params = {"format": annotation_format}
    if annotation_format == "yolo":
        response = client.request("GET", export_url, params=params)
        raise_for_status(response)
        return _extract_yolo(response.content, directory, paths)
    target = directory / FILE_NAMES[annotation_format]
    partial = target.with_name(target.name + ".incomplete")
    with client.http.stream("GET", export_url, params=params) as response:
        if response.status_code >= 400:
            response.read()
            raise_for_status(response)
        if annotation_format == "jsonl":
            with partial.open("w", encoding="utf-8") as out:
                for line in _kept_lines(response.iter_lines(), paths):
                    out.write(line + "\n")
        else:
            # COCO and Label Studio are one JSON document each: read whole, then narrowed.
            document = json.loads(response.read())
            if paths is not None:
                document = _narrowed(annotation_format, document, paths)
            with partial.open("w", encoding="utf-8") as out:
                json.dump(document, out, ensure_ascii=False)
    os.replace(partial, target)
    return [target]


def _kept_lines(lines: Iterator[str], paths: set[str] | None) -> Iterator[str]:
    for line in lines:
        if not line.strip():
            continue
        if paths is None:
            yield line
            continue
        record = json.loads(line)
        # Lines without a path are the label definitions: always kept.
        if not isinstance(record, dict) or record.get("path") is None or record["path"] in paths:
            yield line


def _narrowed(annotation_format: str, document: Any, paths: set[str]) -> Any:
    if annotation_format == "labelstudio":
        return [task for task in document if (task.get("data") or {}).get("image") in paths]
    images = [image for image in document.get("images", []) if image.get("file_name") in paths]
    kept = {image["id"] for image in images}
    annotations = [a for a in document.get("annotations", []) if a.get("image_id") in kept]
    return document | {"images": images, "annotations": annotations}


def _extract_yolo(content: bytes, directory: Path, paths: set[str] | None) -> list[Path]:
    """data.yaml and the label files of the pulled images (every one without ``paths``)."""
    wanted = None if paths is None else {yolo_label_path(path) for path in paths}
    written: list[Path] = []
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for member in archive.infolist():
            name = member.filename
            if member.is_dir() or name.startswith("/") or ".." in name.split("/"):
                continue
            a_label_file = name.endswith(".txt") and "labels/" in name
            if a_label_file and wanted is not None and name not in wanted:
                continue
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            written.append(target)
    return written
