"""What makes a set of paths one a file system can hold: one spelling per path (NFC), and
no path that is both a file and a folder (``a`` beside ``a/b``), which no archive tool,
disk or bucket mount can extract."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Sequence

from quiver.models import DatasetFile
from quiver.resolvers.errors import FieldPath, Refused

# Past this many new paths, reading the working set's paths once beats one LIKE a path.
_SCAN_ABOVE = 50
_QUERY_BATCH = 500


def normalize_path(path: str) -> str:
    """The one spelling of a path: composed and decomposed ``é`` are the same file (NFC,
    what macOS, Windows and most Linux tools write)."""
    return unicodedata.normalize("NFC", path)


def normalize_paths(paths: Iterable[str]) -> list[str]:
    return [normalize_path(path) for path in paths]


def folders_of(path: str) -> list[str]:
    """The folders a path sits in, outermost first: ``a/b/c`` -> ``a``, ``a/b``."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def first_clash(paths: Collection[str]) -> tuple[str, str] | None:
    """(folder, file below it) for a path of ``paths`` that is also a folder of another."""
    present = set(paths)
    for path in sorted(present):
        for folder in folders_of(path):
            if folder in present:
                return folder, path
    return None


def clash_refusal(field: FieldPath | None, taken: str, new: str, *, new_is_file: bool) -> Refused:
    """CONFLICT naming the path already there: ``new`` would make it a file and a folder."""
    if new_is_file:
        reason = f"{new!r} cannot be a file: the dataset holds {taken!r} inside it"
    else:
        reason = f"{new!r} cannot be added: the dataset holds a file at {taken!r}, its folder"
    return Refused.conflict(field, f"{reason} (a path cannot be both a file and a folder)")


async def refuse_clashing_paths(
    dataset_pk: int,
    new_paths: Sequence[str],
    field: FieldPath | None,
    *,
    leaving: str | None = None,
) -> None:
    """Refuse paths that are folders of a file of the working set, or files inside one,
    or both among themselves. ``leaving`` is a path that moves away in the same change.

    Callers hold the dataset's lock, so what is checked is what the change lands on.
    """
    if not new_paths:
        return
    clash = first_clash(new_paths)
    if clash is not None:
        raise clash_refusal(field, clash[0], clash[1], new_is_file=False)
    folders = {folder for path in new_paths for folder in folders_of(path)} - {leaving}
    for batch in _batched(sorted(folders)):
        taken = await DatasetFile.filter(dataset_id=dataset_pk, path__in=batch).first()
        if taken is not None:
            new = next(path for path in new_paths if taken.path in folders_of(path))
            raise clash_refusal(field, taken.path, new, new_is_file=False)
    below = await _first_file_below(dataset_pk, new_paths, leaving)
    if below is not None:
        raise clash_refusal(field, below[1], below[0], new_is_file=True)


async def refuse_clashes_in_working_set(dataset_pk: int, field: FieldPath | None) -> None:
    """Refuse a set-based change (merge, restore, copy) that left a file and a folder at
    one path; called before its transaction commits, so a refusal undoes it."""
    paths = await DatasetFile.filter(dataset_id=dataset_pk).values_list("path", flat=True)
    clash = first_clash([str(path) for path in paths])
    if clash is not None:
        raise clash_refusal(field, clash[0], clash[1], new_is_file=False)


async def _first_file_below(
    dataset_pk: int, new_paths: Sequence[str], leaving: str | None
) -> tuple[str, str] | None:
    """(new path, a file of the working set inside it as a folder), if any."""
    wanted = set(new_paths)
    if len(wanted) > _SCAN_ABOVE:
        existing = await DatasetFile.filter(dataset_id=dataset_pk).values_list("path", flat=True)
        for path in sorted(str(path) for path in existing):
            for folder in folders_of(path):
                if folder in wanted and path != leaving:
                    return folder, path
        return None
    for path in sorted(wanted):
        # LIKE may ignore case (SQLite): each candidate is checked exactly here.
        candidates = await DatasetFile.filter(
            dataset_id=dataset_pk, path__startswith=f"{path}/"
        ).values_list("path", flat=True)
        for found in sorted(str(candidate) for candidate in candidates):
            if found.startswith(f"{path}/") and found != leaving:
                return path, found
    return None


def _batched(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _QUERY_BATCH):
        yield items[start : start + _QUERY_BATCH]
