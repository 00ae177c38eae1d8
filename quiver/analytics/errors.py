"""The two ways a table operation fails: bad data, or a bad argument the caller can fix."""

from __future__ import annotations


class TableError(Exception):
    """The file is not a table we can read; ``line`` is 1-based in the source when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


class BadArgument(ValueError):
    """An argument the caller can fix (unknown column, q out of range, …); names it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message

    def __str__(self) -> str:
        return self.message


class TooManyColumns(TableError):
    """The table is wider than the server reads; not remembered, so a raised limit applies."""

    def __init__(self, columns: int, limit: int) -> None:
        super().__init__(
            f"The table has {columns} columns; at most {limit} columns can be read as a table"
        )
        self.columns = columns
        self.limit = limit
