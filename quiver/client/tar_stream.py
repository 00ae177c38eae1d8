"""The members of a tar stream read straight from the chunks of an HTTP body.

A pull of many small files takes them from one uncompressed tar of the version, and one
thread reads that stream: it sets the pace. ``tarfile``'s stream mode cost that thread a
quarter of its time here (py-spy, 9,990 files of 4-64 KiB): ``_Stream`` copies every read
through its own buffer, ``TarInfo`` decodes every field of every header. This reads what
a pull needs and nothing else: each member's path, kind and bytes, from the server's
archives (ustar headers, PAX records for long or non-ASCII paths) and from any POSIX tar
with GNU long names. Every header's checksum is checked; a stream cut short raises
``TarError``, never returns a short member.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
REGULAR = frozenset({b"0", b"\0", b"7"})


class TarError(ValueError):
    """The stream is not a tar this reader understands, or it ends early."""


@dataclass(slots=True)
class Member:
    name: str
    size: int
    regular: bool


def _number(field: bytes) -> int:
    """A header number: octal digits (NUL or space ended), or base-256 (first bit set)."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] & 0x40 else value
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise TarError(f"a header number is not octal: {digits!r}") from None


def _checksums(header: bytes) -> tuple[int, int]:
    """The header's sum with its checksum field read as spaces: unsigned bytes (POSIX), and
    signed (what some old tars wrote)."""
    unsigned = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
    high = sum(1 for byte in header[:148] + header[156:] if byte & 0x80)
    return unsigned, unsigned - 256 * high


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """``"<length> <key>=<value>\\n"`` records: the length counts the whole record."""
    records: dict[str, str] = {}
    at = 0
    while at < len(data) and data[at] != 0:
        space = data.find(b" ", at)
        try:
            length = int(data[at:space]) if space > at else 0
        except ValueError:
            length = 0
        record = data[space + 1 : at + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise TarError("a PAX record is malformed")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


class TarStream:
    """``for member in stream.members()``; ``stream.read(n)`` reads the current member's
    bytes (the rest of it is skipped when the loop moves on)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._at = 0
        self._left = 0  # bytes of the current member not yet read

    def _take(self, count: int) -> bytes:
        """Exactly ``count`` bytes of the stream (one copy of them at most)."""
        end = self._at + count
        if end <= len(self._chunk):
            data = self._chunk[self._at : end]
            self._at = end
            return data
        parts = [self._chunk[self._at :]]
        wanted = count - len(parts[0])
        while wanted > 0:
            chunk = next(self._chunks, b"")
            if not chunk:
                raise TarError("the archive ends in the middle of a member")
            if len(chunk) > wanted:
                parts.append(chunk[:wanted])
                self._chunk, self._at = chunk, wanted
                return b"".join(parts)
            parts.append(chunk)
            wanted -= len(chunk)
        self._chunk, self._at = b"", 0
        return b"".join(parts)

    def _skip(self, count: int) -> None:
        while count > 0:
            available = len(self._chunk) - self._at
            if available == 0:
                self._chunk, self._at = next(self._chunks, b""), 0
                if not self._chunk:
                    raise TarError("the archive ends in the middle of a member")
                continue
            step = min(available, count)
            self._at += step
            count -= step

    def read(self, count: int = -1) -> bytes:
        """All of the current member that is left (-1), or up to ``count`` bytes of it: a
        whole chunk of the body, uncopied, where it fits; b"" at its end."""
        if count < 0:
            data = self._take(self._left)
            self._left = 0
            return data
        count = min(count, self._left)
        if count == 0:
            return b""
        if self._at == len(self._chunk):
            self._chunk, self._at = next(self._chunks, b""), 0
            if not self._chunk:
                raise TarError("the archive ends in the middle of a member")
        if self._at == 0 and len(self._chunk) <= count:
            data, self._chunk = self._chunk, b""
        else:
            data = self._take(min(count, len(self._chunk) - self._at))
        self._left -= len(data)
        return data

    def members(self) -> Iterator[Member]:
        pax: dict[str, str] = {}
        long_name: str | None = None
        while True:
            header = self._take(BLOCK)
            if header == ZERO_BLOCK:
                return  # the end (a second zero block follows; nothing after it is read)
            if _number(header[148:156]) not in _checksums(header):
                raise TarError("a header's checksum does not match")
            size = _number(header[124:136])
            kind = header[156:157]
            padding = -size % BLOCK
            if kind in (b"x", b"g", b"L"):
                data = self._take(size)
                self._skip(padding)
                if kind == b"x":
                    pax.update(_pax_records(data))
                elif kind == b"L":
                    long_name = _text(data)
                continue  # a global header ("g") sets nothing a pull uses
            name = _text(header[:100])
            prefix = _text(header[345:500]) if header[257:263] == b"ustar\0" else ""
            if prefix:
                name = f"{prefix}/{name}"
            name = pax.get("path", long_name or name)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise TarError("a PAX size is not a number") from None
                padding = -size % BLOCK
            if size < 0:
                raise TarError("a member's size is negative")
            pax, long_name = {}, None
            self._left = size
            yield Member(name.rstrip("/") if kind == b"5" else name, size, kind in REGULAR)
            self._skip(self._left + padding)
            self._left = 0
