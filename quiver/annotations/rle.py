"""COCO run-length encoding: the compressed string form, area and bounding box."""

from __future__ import annotations

from typing import Any


def decode_counts(text: str) -> list[int]:
    """Runs from COCO's compressed string (pycocotools' ``rleFrString``)."""
    counts: list[int] = []
    position = 0
    data = text.encode("ascii")
    while position < len(data):
        value = 0
        shift = 0
        more = True
        while more:
            if position >= len(data):
                raise ValueError("truncated RLE counts")
            char = data[position] - 48
            value |= (char & 0x1F) << (5 * shift)
            more = bool(char & 0x20)
            position += 1
            shift += 1
            if not more and char & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def encode_counts(counts: list[int]) -> str:
    """COCO's compressed string from runs (pycocotools' ``rleToString``)."""
    out = bytearray()
    for i, run in enumerate(counts):
        value = run - counts[i - 2] if i > 2 else run
        more = True
        while more:
            char = value & 0x1F
            value >>= 5
            more = value != -1 if char & 0x10 else value != 0
            if more:
                char |= 0x20
            out.append(char + 48)
    return out.decode("ascii")


def runs(mask: dict[str, Any]) -> list[int]:
    counts = mask["counts"]
    return decode_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]


def area(mask: dict[str, Any]) -> int:
    return sum(runs(mask)[1::2])


def bbox(mask: dict[str, Any]) -> list[int]:
    """``[x, y, w, h]`` of the set pixels (column-major runs, as pycocotools reads them)."""
    height = int(mask["size"][0])
    position = 0
    xmin = ymin = 2**62
    xmax = ymax = -1
    for i, run in enumerate(runs(mask)):
        if i % 2 == 1 and run > 0:
            start, end = position, position + run - 1
            x0, x1 = start // height, end // height
            y0, y1 = start % height, end % height
            if x1 > x0:
                y0, y1 = 0, height - 1
            xmin, xmax = min(xmin, x0), max(xmax, x1)
            ymin, ymax = min(ymin, y0), max(ymax, y1)
        position += run
    if xmax < 0:
        return [0, 0, 0, 0]
    return [xmin, ymin, xmax - xmin + 1, ymax - ymin + 1]
