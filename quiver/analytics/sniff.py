"""Guess a CSV file's encoding, delimiter, quote character and header from its first 64 KiB."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from quiver.analytics.errors import TableError

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
QUOTES = ('"', "'")
SAMPLE_RECORDS = 200
UTF8_BOM = codecs.BOM_UTF8

_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
_BOOLEAN = frozenset({"true", "false"})


@dataclass(frozen=True)
class CsvDialect:
    """How to read a CSV file; ``encoding`` is a Python codec name."""

    delimiter: str
    quotechar: str
    encoding: str
    header: bool


def sniff_csv(path: Path, hint: str | None = None) -> CsvDialect:
    """The dialect of ``path``; a ``hint`` ending in ``tsv`` or ``tab`` prefers tabs."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        truncated = bool(file.read(1))
    if not head.strip():
        raise TableError("The file is empty")
    encoding, text = decode_head(head, truncated=truncated)
    prefer_tab = hint is not None and hint.lower().endswith(("tsv", "tab"))
    delimiter, quotechar, records = best_split(text, truncated=truncated, prefer_tab=prefer_tab)
    return CsvDialect(delimiter, quotechar, encoding, has_header(records))


def decode_head(head: bytes, *, truncated: bool) -> tuple[str, str]:
    """UTF-8 (with or without BOM) when the head decodes as such, else cp1252 or Latin-1."""
    if head.startswith(UTF8_BOM):
        return "utf-8-sig", utf8_prefix(head[len(UTF8_BOM) :], truncated=truncated)
    try:
        return "utf-8", utf8_prefix(head, truncated=truncated)
    except UnicodeDecodeError:
        pass
    try:
        return "cp1252", head.decode("cp1252")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; Latin-1 decodes anything.
        return "latin-1", head.decode("latin-1")


def utf8_prefix(head: bytes, *, truncated: bool) -> str:
    # A multi-byte character cut by the 64 KiB boundary is not an encoding error.
    decoder = codecs.getincrementaldecoder("utf-8")()
    return decoder.decode(head, final=not truncated)


def split_records(text: str, delimiter: str, quotechar: str, *, truncated: bool) -> list[list[str]]:
    """Up to ``SAMPLE_RECORDS`` complete, non-blank records of the head."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
    records: list[list[str]] = []
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) > SAMPLE_RECORDS:
                return records[:SAMPLE_RECORDS]
    except csv.Error:
        return records
    if truncated and len(records) > 1:
        records.pop()  # the head may end mid-record
    return records


def consistency(records: list[list[str]]) -> tuple[float, int]:
    """The share of records with the most common field count, and that count."""
    if not records:
        return 0.0, 0
    counts: dict[int, int] = {}
    for record in records:
        counts[len(record)] = counts.get(len(record), 0) + 1
    modal = max(counts, key=lambda width: (counts[width], width))
    return counts[modal] / len(records), modal


def best_split(text: str, *, truncated: bool, prefer_tab: bool) -> tuple[str, str, list[list[str]]]:
    """The delimiter and quote that split the head most consistently into the most fields."""
    delimiters = ("\t", *DELIMITERS[:2], DELIMITERS[3]) if prefer_tab else DELIMITERS
    best: tuple[tuple[float, int, int], str, str, list[list[str]]] | None = None
    for rank, (quotechar, delimiter) in enumerate(
        (quote, delimiter) for quote in QUOTES for delimiter in delimiters
    ):
        records = split_records(text, delimiter, quotechar, truncated=truncated)
        share, width = consistency(records)
        if width < 2:
            continue
        # Ties go to the earlier candidate: double quotes first, then the delimiter order.
        score = (share, width, -rank)
        if best is None or score > best[0]:
            best = (score, delimiter, quotechar, records)
    if best is None:
        delimiter = delimiters[0]
        return delimiter, '"', split_records(text, delimiter, '"', truncated=truncated)
    return best[1], best[2], best[3]


def value_kind(value: str) -> str:
    """``number``, ``date``, ``boolean``, ``empty`` or ``text``, as a header test needs."""
    stripped = value.strip()
    if not stripped:
        return "empty"
    if _NUMBER.fullmatch(stripped):
        return "number"
    if _DATE.fullmatch(stripped):
        return "date"
    if stripped.lower() in _BOOLEAN:
        return "boolean"
    return "text"


def has_header(records: list[list[str]]) -> bool:
    """Whether the first record names the columns.

    It does not when any of its values is a number, date or boolean. It does when some column
    holds typed values below a text first row, or, in an all-text file, when the first row's
    values are distinct and non-empty (the usual shape of names).
    """
    if not records:
        return False
    first, rest = records[0], records[1:]
    kinds = [value_kind(value) for value in first]
    if any(kind in ("number", "date", "boolean") for kind in kinds):
        return False
    for column in range(len(first)):
        below = {value_kind(record[column]) for record in rest if column < len(record)}
        below.discard("empty")
        if below and "text" not in below:
            return True
    return all(kinds) and "empty" not in kinds and len(set(first)) == len(first)


def column_names(first_record: list[str], header: bool) -> list[str]:
    """Names for the columns: the header's (blank → ``column_N``, repeats → ``name.1``)."""
    if not header:
        return [f"column_{index}" for index in range(1, len(first_record) + 1)]
    names: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(first_record, start=1):
        base = raw if raw.strip() else f"column_{index}"
        name, repeat = base, 0
        while name in seen:
            repeat += 1
            name = f"{base}.{repeat}"
        seen.add(name)
        names.append(name)
    return names


def first_record(path: Path, dialect: CsvDialect) -> list[str]:
    """The first non-blank record, parsed the way the converter will parse the file."""
    with path.open("r", encoding=dialect.encoding, errors="replace", newline="") as file:
        reader = csv.reader(file, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        for record in reader:
            if record:
                return record
    raise TableError("The file is empty")
