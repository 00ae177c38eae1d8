"""Guess how to read a CSV file from its first 64 KiB: encoding, delimiter (one character, or
runs of spaces), quote character, metadata lines to skip, header, and date layouts."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quiver.analytics.dates import LOOKS_LIKE_DATE, DateColumn, column_date_layout
from quiver.analytics.errors import TableError, TooManyColumns
from quiver.analytics.read_options import DEFAULT_NULL_VALUES, WHITESPACE, ReadOptions

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
QUOTES = ('"', "'")
SAMPLE_RECORDS = 200
# At most this many leading lines are taken for a title or metadata and skipped.
MAX_METADATA_LINES = 10
METADATA_MIN_CONSISTENCY = 0.9
UTF8_BOM = codecs.BOM_UTF8
# The converter reads 4 MiB blocks, and a record must fit in one.
MAX_LINE_CHARS = 4 * 1024 * 1024

_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
_INTEGER = re.compile(r"[+-]?\d+")
_BOOLEAN = frozenset({"true", "false"})


@dataclass(frozen=True)
class CsvDialect:
    """How to read a CSV file; ``encoding`` is a Python codec name, ``delimiter`` one
    character or ``WHITESPACE``, ``skip_rows`` lines before the header (or first row)."""

    delimiter: str
    quotechar: str
    encoding: str
    header: bool
    skip_rows: int = 0
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES
    dtypes: tuple[tuple[str, str], ...] = ()
    dates: tuple[DateColumn, ...] = ()

    def read_options(self) -> dict[str, Any]:
        """What the file is read with, as ``ReadOptions.to_json`` writes it."""
        return ReadOptions(
            delimiter=self.delimiter,
            header=self.header,
            skip_rows=self.skip_rows,
            quote=self.quotechar,
            encoding=self.encoding,
            null_values=self.null_values,
            dtypes=self.dtypes,
        ).to_json()


def sniff_csv(
    path: Path, hint: str | None = None, options: ReadOptions | None = None
) -> CsvDialect:
    """The dialect of ``path``: ``options`` where given, else guessed; a ``hint`` ending in
    ``tsv`` or ``tab`` prefers tabs."""
    given = options or ReadOptions()
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        truncated = bool(file.read(1))
    if not head.strip():
        raise TableError("The file is empty")
    if given.encoding is not None:
        encoding, text = given.encoding, head.decode(given.encoding, errors="replace")
        text = text.removeprefix("\ufeff")
    else:
        encoding, text = decode_head(head, truncated=truncated)
    if given.skip_rows:
        text = "".join(text.splitlines(keepends=True)[given.skip_rows :])
    if given.delimiter is not None:
        delimiter, quotechar = given.delimiter, given.quote or '"'
        records = split_records(text, delimiter, quotechar, truncated=truncated)
    else:
        prefer_tab = hint is not None and hint.lower().endswith(("tsv", "tab"))
        quotes = (given.quote,) if given.quote is not None else QUOTES
        delimiter, quotechar, records = best_split(
            text, truncated=truncated, prefer_tab=prefer_tab, quotes=quotes
        )
    nulls = given.null_values if given.null_values is not None else DEFAULT_NULL_VALUES
    skip_rows = given.skip_rows
    if skip_rows is None:
        skipped = metadata_records(records, nulls)
        skip_rows, records = lines_of_records(text, skipped), records[skipped:]
    header = given.header if given.header is not None else has_header(records)
    return CsvDialect(
        delimiter,
        quotechar,
        encoding,
        header,
        skip_rows=skip_rows,
        null_values=nulls,
        dtypes=given.dtypes or (),
        dates=sniff_dates(records[1:] if header else records, nulls),
    )


def decode_head(head: bytes, *, truncated: bool) -> tuple[str, str]:
    """UTF-8 (with or without BOM) when the head decodes as such, else cp1252 or Latin-1."""
    if head.startswith(UTF8_BOM):
        try:
            return "utf-8-sig", utf8_prefix(head[len(UTF8_BOM) :], truncated=truncated)
        except UnicodeDecodeError as error:
            # The mark says UTF-8 and the bytes say otherwise: neither can be trusted.
            offset = error.start + len(UTF8_BOM)
            line = head.count(b"\n", 0, offset) + 1
            raise TableError(
                f"The file starts with a UTF-8 byte-order mark, but line {line} is not valid "
                f"UTF-8: byte 0x{head[offset]:02x} at offset {offset}. Save it as UTF-8, or "
                "remove the mark and give its encoding in the read options",
                line=line,
            ) from None
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
    if delimiter == WHITESPACE:
        lines = text.splitlines()
        if truncated and len(lines) > 1:
            lines.pop()
        found = [split_whitespace(line, quotechar) for line in lines if line.strip()]
        return found[:SAMPLE_RECORDS]
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


def split_whitespace(line: str, quotechar: str) -> list[str]:
    """The fields of a line whose fields are separated by runs of spaces and tabs."""
    reader = csv.reader(
        [line.strip().replace("\t", " ")], delimiter=" ", quotechar=quotechar, skipinitialspace=True
    )
    try:
        return next(reader, [])
    except csv.Error:
        return line.split()


def consistency(records: list[list[str]]) -> tuple[float, int]:
    """The share of records with the most common field count, and that count."""
    if not records:
        return 0.0, 0
    counts: dict[int, int] = {}
    for record in records:
        counts[len(record)] = counts.get(len(record), 0) + 1
    modal = max(counts, key=lambda width: (counts[width], width))
    return counts[modal] / len(records), modal


def best_split(
    text: str, *, truncated: bool, prefer_tab: bool, quotes: tuple[str, ...] = QUOTES
) -> tuple[str, str, list[list[str]]]:
    """The delimiter and quote that split the head most consistently into the most fields.

    Runs of spaces are the delimiter only when no single character splits every record the
    same way and runs of spaces do (values holding spaces are common; padding less so).
    """
    delimiters = ("\t", *DELIMITERS[:2], DELIMITERS[3]) if prefer_tab else DELIMITERS
    best: tuple[tuple[float, int, int], str, str, list[list[str]]] | None = None
    for rank, (quotechar, delimiter) in enumerate(
        (quote, delimiter) for quote in quotes for delimiter in delimiters
    ):
        records = split_records(text, delimiter, quotechar, truncated=truncated)
        share, width = consistency(records)
        if width < 2:
            continue
        # Ties go to the earlier candidate: double quotes first, then the delimiter order.
        score = (share, width, -rank)
        if best is None or score > best[0]:
            best = (score, delimiter, quotechar, records)
    if best is None or best[0][0] < 1.0:
        records = split_records(text, WHITESPACE, quotes[0], truncated=truncated)
        share, width = consistency(records)
        if share == 1.0 and width >= 2 and (best is None or width >= best[0][1]):
            return WHITESPACE, quotes[0], records
    if best is None:
        delimiter = delimiters[0]
        return delimiter, quotes[0], split_records(text, delimiter, quotes[0], truncated=truncated)
    return best[1], best[2], best[3]


def metadata_records(records: list[list[str]], nulls: tuple[str, ...]) -> int:
    """How many leading records are a title or metadata rather than the header or data.

    Those are records with another field count than the rest (``150,4,setosa,versicolor,
    virginica`` over 31 columns), or, with the same count, a record of integers then labels
    whose labels sit over columns that hold only numbers below (scikit-learn's iris).
    """
    if len(records) < 2:
        return 0
    _, width = consistency(records)
    skipped = 0
    while skipped < MAX_METADATA_LINES and len(records) - skipped > 1:
        if len(records[skipped]) == width:
            break
        skipped += 1
    if skipped:
        share, _ = consistency(records[skipped:])
        return skipped if share >= METADATA_MIN_CONSISTENCY else 0
    return 1 if counts_then_labels(records, nulls) else 0


def counts_then_labels(records: list[list[str]], nulls: tuple[str, ...]) -> bool:
    first = [value.strip() for value in records[0]]
    kinds = ["empty" if value in nulls else value_kind(value) for value in first]
    integers = 0
    while integers < len(first) and _INTEGER.fullmatch(first[integers]):
        integers += 1
    labels = kinds[integers:]
    if not integers or not labels or any(kind != "text" for kind in labels):
        return False
    rest = records[1:]
    body = rest[1:] if has_header(rest) else rest
    if not body:
        return False
    for column in range(integers, len(first)):
        below = {value_kind(r[column]) for r in body if column < len(r) and r[column] not in nulls}
        below.discard("empty")
        if below != {"number"}:
            return False
    return True


def lines_of_records(text: str, count: int) -> int:
    """The lines the first ``count`` non-blank records take (each on one line)."""
    if count == 0:
        return 0
    seen = 0
    for index, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            seen += 1
            if seen == count:
                return index
    return count


def sniff_dates(body: list[list[str]], nulls: tuple[str, ...]) -> tuple[DateColumn, ...]:
    """The columns of ``body`` whose values are dates in a layout pyarrow does not infer."""
    width = max((len(record) for record in body), default=0)
    found: list[DateColumn] = []
    for index in range(width):
        values = [
            value
            for record in body
            if index < len(record) and (value := record[index].strip()) and value not in nulls
        ]
        if all(_DATE.fullmatch(value) for value in values):
            continue  # ISO 8601 (or nothing): pyarrow reads it by itself
        column = column_date_layout(index, values)
        if column is not None:
            found.append(column)
    return tuple(found)


def value_kind(value: str) -> str:
    """``number``, ``date``, ``boolean``, ``empty`` or ``text``, as a header test needs."""
    stripped = value.strip()
    if not stripped:
        return "empty"
    if _NUMBER.fullmatch(stripped):
        return "number"
    if _DATE.fullmatch(stripped) or LOOKS_LIKE_DATE.fullmatch(stripped):
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


def first_record(path: Path, dialect: CsvDialect, max_columns: int | None = None) -> list[str]:
    """The first non-blank record after the skipped lines, parsed as the converter will.

    Lines are read at most ``MAX_LINE_CHARS`` at a time, and a first line with more than
    ``max_columns`` fields is refused before it is split into a list of them: a file of one
    huge line costs neither its size in memory nor a string object per field.
    """
    with path.open("r", encoding=dialect.encoding, errors="replace", newline="") as file:
        for _ in range(dialect.skip_rows):
            if not file.readline(MAX_LINE_CHARS):
                break
        lines = bounded_lines(file, dialect.skip_rows)
        if dialect.delimiter == WHITESPACE:
            for line in lines:
                if line.strip():
                    check_width(line.split(), max_columns)
                    return split_whitespace(line, dialect.quotechar)
        lines = width_checked(lines, dialect, max_columns)
        reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
        for record in reader:
            if record:
                check_width(record, max_columns)
                return record
    if dialect.skip_rows:
        raise TableError(f"The file has nothing after the {dialect.skip_rows} skipped lines")
    raise TableError("The file is empty")


def bounded_lines(file: Any, skipped: int) -> Iterator[str]:
    """The file's lines, refusing one longer than ``MAX_LINE_CHARS`` (a 4 MiB line is
    longer than any block the converter reads, so it could not be read anyway)."""
    number = skipped
    while line := file.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise TableError(
                f"Line {number} is longer than {MAX_LINE_CHARS} characters", line=number
            )
        yield line


def width_checked(
    lines: Iterator[str], dialect: CsvDialect, max_columns: int | None
) -> Iterator[str]:
    """``lines``, refusing the first non-blank one when it surely has too many fields.

    Without a quote character in the line every delimiter separates two fields, so the count
    is exact without splitting it.
    """
    for line in lines:
        if max_columns is not None and line.strip() and dialect.quotechar not in line:
            fields = line.count(dialect.delimiter) + 1
            if fields > max_columns:
                raise TooManyColumns(fields, max_columns)
            max_columns = None
        yield line


def check_width(record: list[str], max_columns: int | None) -> None:
    if max_columns is not None and len(record) > max_columns:
        raise TooManyColumns(len(record), max_columns)
