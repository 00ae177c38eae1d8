"""COCO run-length encoding: the compressed string form, area and bounding box."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


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


def bitmap(mask: dict[str, Any]) -> npt.NDArray[np.bool_]:
    """The mask as a (height, width) array of booleans."""
    import numpy as np  # only masks need it: the server does not load numpy until then

    height, width = (int(v) for v in mask["size"])
    flat = np.zeros(height * width, dtype=np.bool_)
    position = 0
    for i, run in enumerate(runs(mask)):
        if i % 2 == 1:
            flat[position : position + run] = True
        position += run
    return flat.reshape((width, height)).T


def traced_rings(mask: dict[str, Any]) -> tuple[list[list[list[int]]], int]:
    """The outlines of the mask's regions along pixel borders, as polygons, and how many
    holes there were (left out: a polygon ring cannot cut one)."""
    import numpy as np

    pixels = bitmap(mask)
    padded = np.pad(pixels, 1)
    inside = padded[1:-1, 1:-1]
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    # Each border between a set pixel and an unset one, directed so that every outline runs
    # one way round (outer ones with negative shoelace area in image coordinates).
    sides = (
        (padded[:-2, 1:-1], ((1, 0), (0, 0))),  # nothing above: top edge, right to left
        (padded[1:-1, :-2], ((0, 0), (0, 1))),  # nothing to the left: down the left edge
        (padded[2:, 1:-1], ((0, 1), (1, 1))),  # nothing below: bottom edge, left to right
        (padded[1:-1, 2:], ((1, 1), (1, 0))),  # nothing to the right: up the right edge
    )
    for neighbour, ((x0, y0), (x1, y1)) in sides:
        rows, columns = np.nonzero(inside & ~neighbour)
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            edges.setdefault((column + x0, row + y0), []).append((column + x1, row + y1))
    rings: list[list[list[int]]] = []
    holes = 0
    while edges:
        start = next(iter(edges))
        ring = [start]
        point = start
        while True:
            ends = edges[point]
            following = ends.pop()
            if not ends:
                del edges[point]
            if following == start:
                break
            ring.append(following)
            point = following
        corners = _corners_only(ring)
        if _signed_area(corners) < 0:
            rings.append([[x, y] for x, y in corners])
        else:
            holes += 1
    return rings, holes


def _corners_only(ring: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ring without the points in the middle of straight runs."""
    kept = []
    for i, (x, y) in enumerate(ring):
        px, py = ring[i - 1]
        nx, ny = ring[(i + 1) % len(ring)]
        if (x - px) * (ny - y) - (y - py) * (nx - x) != 0:
            kept.append((x, y))
    return kept


def _signed_area(ring: list[tuple[int, int]]) -> float:
    return (
        sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True))
        / 2
    )
