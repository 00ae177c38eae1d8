"""How push and pull report progress: the CLI draws bars, a library caller may ignore it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, name: str, *, files: int, bytes: int) -> None:
        """A new stage (hashing, uploading, downloading) of this many files and bytes."""

    def advance(self, *, files: int = 0, bytes: int = 0) -> None:
        """Files finished and bytes moved since the last call (any thread)."""

    def note(self, message: str) -> None:
        """A line worth showing (a file skipped, a retry)."""


class Silent:
    def phase(self, name: str, *, files: int, bytes: int) -> None:
        pass

    def advance(self, *, files: int = 0, bytes: int = 0) -> None:
        pass

    def note(self, message: str) -> None:
        pass
