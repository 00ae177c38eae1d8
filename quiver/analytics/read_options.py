"""How a CSV file is read: options a user gives, every one left unset being sniffed."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

# Runs of spaces and tabs, as pandas' ``sep=r"\s+"``.
WHITESPACE = r"\s+"
# pyarrow's own default ``ConvertOptions().null_values``, spelled out so that checking
# options needs no pyarrow (a test keeps the two equal).
DEFAULT_NULL_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
)  # fmt: skip
# The dtypes a user may give a column (pandas' names); ``convert.ARROW_TYPES`` maps them.
DTYPE_NAMES: tuple[str, ...] = ("int64", "float64", "bool", "datetime64", "category", "object")
MAX_SKIP_ROWS = 1_000_000
MAX_NULL_VALUES = 100
MAX_DTYPES = 1000
MAX_MARKER_LENGTH = 100


@dataclass(frozen=True)
class ReadOptions:
    """Options for reading a CSV or TSV file; ``None`` means "sniff it"."""

    delimiter: str | None = None
    header: bool | None = None
    skip_rows: int | None = None
    quote: str | None = None
    encoding: str | None = None
    null_values: tuple[str, ...] | None = None
    dtypes: tuple[tuple[str, str], ...] | None = None

    def over(self, base: ReadOptions) -> ReadOptions:
        """These options, with ``base``'s where these leave one unset."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(base, **{name: value for name, value in given.items() if value is not None})

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def to_json(self) -> dict[str, Any]:
        """The options set, as JSON (the form stored on a file and hashed into cache keys)."""
        found: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "null_values":
                value = list(value)
            elif f.name == "dtypes":
                value = dict(value)
            found[f.name] = value
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ReadOptions:
        if not data:
            return cls()
        nulls, dtypes = data.get("null_values"), data.get("dtypes")
        return cls(
            delimiter=data.get("delimiter"),
            header=data.get("header"),
            skip_rows=data.get("skip_rows"),
            quote=data.get("quote"),
            encoding=data.get("encoding"),
            null_values=tuple(nulls) if nulls is not None else None,
            dtypes=tuple(sorted(dtypes.items())) if dtypes is not None else None,
        )


def read_options_problems(options: ReadOptions) -> list[tuple[str, str]]:
    """(field, message) for every option that cannot be used; fields are GraphQL names."""
    problems: list[tuple[str, str]] = []
    delimiter, quote = options.delimiter, options.quote
    if delimiter is not None and delimiter != WHITESPACE and not _one_character(delimiter):
        problems.append(
            ("delimiter", f"A delimiter is one character, or {WHITESPACE!r} for runs of spaces")
        )
    if quote is not None and not _one_character(quote):
        problems.append(("quote", "A quote is one character"))
    elif quote is not None and quote == delimiter:
        problems.append(("quote", "The quote cannot be the delimiter"))
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            problems.append(("encoding", f"Unknown encoding {options.encoding!r}"))
    if options.skip_rows is not None and not 0 <= options.skip_rows <= MAX_SKIP_ROWS:
        problems.append(("skipRows", f"skipRows must be between 0 and {MAX_SKIP_ROWS}"))
    if options.null_values is not None and (
        len(options.null_values) > MAX_NULL_VALUES
        or any(len(marker) > MAX_MARKER_LENGTH for marker in options.null_values)
    ):
        problems.append(
            (
                "nullValues",
                f"At most {MAX_NULL_VALUES} null markers of {MAX_MARKER_LENGTH} characters",
            )
        )
    if options.dtypes is not None:
        unknown = sorted({dtype for _, dtype in options.dtypes} - set(DTYPE_NAMES))
        if len(options.dtypes) > MAX_DTYPES:
            problems.append(("dtypes", f"At most {MAX_DTYPES} columns"))
        elif unknown:
            known = ", ".join(DTYPE_NAMES)
            problems.append(("dtypes", f"Unknown dtype {unknown[0]!r}; one of {known}"))
    return problems


def dtypes_from(value: object) -> tuple[tuple[str, str], ...] | None:
    """``dtypes`` as given in JSON (column -> dtype), or None when it is not such an object."""
    if not isinstance(value, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return tuple(sorted(value.items()))


def _one_character(value: str) -> bool:
    return len(value) == 1 and value not in "\r\n"
