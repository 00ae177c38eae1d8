"""Progress for the CLI: rich bars for bytes and files on a terminal, plain lines in a pipe."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


class BarProgress:
    """Two bars a phase: bytes (with speed and time left) and files."""

    def __init__(self, console: Console) -> None:
        # rich loads only on a terminal: a pipe's plain lines start faster without it.
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._bytes: TaskID | None = None
        self._files: TaskID | None = None
        self._live = False

    def phase(self, name: str, *, files: int, bytes: int) -> None:
        if not self._live:
            self.bars.start()
            self._live = True
        self._bytes = self.bars.add_task(name, total=bytes)
        self._files = self.bars.add_task("  files", total=files)

    def advance(self, *, files: int = 0, bytes: int = 0) -> None:
        if bytes and self._bytes is not None:
            self.bars.advance(self._bytes, bytes)
        if files and self._files is not None:
            self.bars.advance(self._files, files)

    def note(self, message: str) -> None:
        self.bars.console.log(message)

    def close(self) -> None:
        if self._live:
            self.bars.stop()


class LineProgress:
    """A line when a phase starts, then one every few seconds and at its end."""

    def __init__(self, out: TextIO, every: float = 2.0) -> None:
        self.out = out
        self.every = every
        self._lock = threading.Lock()
        self._name = ""
        self._totals = (0, 0)
        self._done = [0, 0]
        self._last = 0.0

    def phase(self, name: str, *, files: int, bytes: int) -> None:
        self._finish()
        with self._lock:
            self._name, self._totals, self._done = name, (files, bytes), [0, 0]
            self._last = time.monotonic()
        print(f"{name}: {files} files, {bytes} bytes", file=self.out, flush=True)

    def advance(self, *, files: int = 0, bytes: int = 0) -> None:
        with self._lock:
            self._done[0] += files
            self._done[1] += bytes
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
            line = self._line()
        print(line, file=self.out, flush=True)

    def note(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def _line(self) -> str:
        files, size = self._totals
        return f"{self._name}: {self._done[0]}/{files} files, {self._done[1]}/{size} bytes"

    def _finish(self) -> None:
        if self._name:
            print(self._line(), file=self.out, flush=True)

    def close(self) -> None:
        self._finish()
        self._name = ""


def progress_for(quiet: bool) -> BarProgress | LineProgress | None:
    if quiet:
        return None
    if sys.stderr.isatty():
        from rich.console import Console

        return BarProgress(Console(stderr=True))
    return LineProgress(sys.stderr)
