"""Streaming zip, tar and tar.gz encoders: an archive is produced while it is sent.

Files are fed chunk by chunk and the encoded bytes collect in a ``Sink`` that the sender
empties whenever it reaches FLUSH_SIZE. Memory stays flat whatever the size and number of
files: the zip central directory moves to a temp file once it outgrows
DIRECTORY_IN_MEMORY, and a member is held back only until its first SAMPLE_SIZE bytes
have told whether to deflate it.
"""

from __future__ import annotations

import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from isal import isal_zlib

from quiver.http.archive_compression import (
    Compression,
    GzipStream,
    HeldStart,
    crc32,
    deflate_by_name,
    new_deflater,
    sample_shrinks,
)
from quiver.resolvers.exports import Member
from quiver.storage import StorageError

FLUSH_SIZE = 256 * 1024
DOS_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)
# The central directory of up to this many bytes stays in memory, beyond it in a temp file.
DIRECTORY_IN_MEMORY = 4 * 1024 * 1024
ZIP_STORED, ZIP_DEFLATED = 0, 8
ZIP_VERSION, ZIP64_VERSION = 20, 45  # 2.0: deflate, data descriptors; 4.5: zip64
ZIP_FLAGS = 0x0808  # sizes in a data descriptor (bit 3); UTF-8 names (bit 11)
UNIX = 3
FILE_MODE = 0o100644  # a regular file, rw-r--r--
MAX_16, MAX_32 = 0xFFFF, 0xFFFF_FFFF
# When zip64 fields are used: zipfile's threshold for sizes (some tools read 32-bit sizes
# as signed), and the format's own limits for offsets and the entry count.
ZIP64_SIZE = zipfile.ZIP64_LIMIT
ZIP64_OFFSET = MAX_32
ZIP64_ENTRIES = MAX_16


class Sink:
    """A write-only, unseekable file whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        # A view of bytes cannot change under us; anything else is copied.
        keep = isinstance(data, memoryview) and isinstance(data.obj, bytes)
        self.parts.append(data if keep else bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


class Encoder(Protocol):
    """Turns members into archive bytes, left in ``sink``; ``close`` yields the ending."""

    sink: Sink

    @property
    def may_deflate(self) -> bool:
        """Whether the next ``write`` may deflate (else it only copies and checksums)."""

    def begin(self, member: Member) -> None: ...
    def write(self, chunk: bytes) -> None: ...
    def end(self) -> None: ...
    def close(self) -> Iterator[bytes]: ...
    def abort(self) -> None: ...


class ZipEncoder:
    """A zip written front to back: each entry's sizes follow it in a data descriptor,
    zip64 fields appear where a size, offset or count needs them, and the central
    directory waits in a spooled temp file instead of memory until the end."""

    def __init__(self, temp_dir: Path | None = None, *, compression: Compression = "auto") -> None:
        self.sink = Sink()
        self.compression = compression
        self.member: Member | None = None
        self.held = HeldStart()
        self.offset = 0
        self.count = 0
        # Closed by close() or abort(): it outlives this call by design.
        self.directory = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=DIRECTORY_IN_MEMORY, dir=None if temp_dir is None else str(temp_dir)
        )
        self.entry: _ZipEntry | None = None

    def _emit(self, data: bytes) -> None:
        self.offset += len(data)
        self.sink.write(data)

    @property
    def may_deflate(self) -> bool:
        return self.entry is None or self.entry.compressor is not None

    def begin(self, member: Member) -> None:
        self.member = member
        deflate = deflate_by_name(member.path, member.size, self.compression)
        if deflate is not None:
            self._start(deflate)

    def write(self, chunk: bytes) -> None:
        if self.entry is None:  # still sampling
            if not self.held.add(chunk):
                return
            chunk = self.held.take()
            self._start(sample_shrinks(chunk))
        self._feed(chunk)

    def _start(self, deflate: bool) -> None:
        """The local header: it names the method, so it waits for the choice of one."""
        member = self.member
        assert member is not None
        # Deflate can grow incompressible bytes a little; zip64 decided up front stays safe.
        zip64 = member.size * 1.05 > ZIP64_SIZE
        entry = _ZipEntry(
            name=member.path.encode("utf-8"),
            method=ZIP_DEFLATED if deflate else ZIP_STORED,
            dos_time=_dos_time(member.modified),
            zip64=zip64,
            header_offset=self.offset,
            compressor=new_deflater() if deflate else None,
        )
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if zip64 else b""
        sizes = MAX_32 if zip64 else 0
        header = struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            ZIP64_VERSION if zip64 else ZIP_VERSION,
            ZIP_FLAGS,
            entry.method,
            *entry.dos_time,
            0,  # CRC-32, sizes: in the data descriptor
            sizes,
            sizes,
            len(entry.name),
            len(extra),
        )
        self._emit(header + entry.name + extra)
        self.entry = entry

    def _feed(self, chunk: bytes) -> None:
        entry = self.entry
        assert entry is not None
        entry.crc = crc32(chunk, entry.crc)
        entry.size += len(chunk)
        if entry.compressor is None:
            entry.compressed += len(chunk)
            self._emit(chunk)
            return
        data = entry.compressor.compress(chunk)
        entry.compressed += len(data)
        self._emit(data)

    def end(self) -> None:
        if self.entry is None:  # a member shorter than a sample
            held = self.held.take()
            self._start(sample_shrinks(held))
            if held:
                self._feed(held)
        entry = self.entry
        assert entry is not None
        if entry.compressor is not None:
            rest = entry.compressor.flush()
            entry.compressed += len(rest)
            self._emit(rest)
        if not entry.zip64 and max(entry.size, entry.compressed) > MAX_32:
            raise StorageError(f"{entry.name!r} is larger in storage than recorded")
        layout = "<4sIQQ" if entry.zip64 else "<4sIII"
        self._emit(struct.pack(layout, b"PK\x07\x08", entry.crc, entry.compressed, entry.size))
        self.directory.write(self._directory_record(entry))
        self.count += 1
        self.entry = None
        self.member = None

    def _directory_record(self, entry: _ZipEntry) -> bytes:
        size, compressed, offset = entry.size, entry.compressed, entry.header_offset
        wide: list[int] = []
        if entry.zip64:
            wide += [size, compressed]
            size = compressed = MAX_32
        if offset >= ZIP64_OFFSET:
            wide.append(offset)
            offset = MAX_32
        extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
        version = ZIP64_VERSION if wide else ZIP_VERSION
        record = struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            UNIX << 8 | version,
            version,
            ZIP_FLAGS,
            entry.method,
            *entry.dos_time,
            entry.crc,
            compressed,
            size,
            len(entry.name),
            len(extra),
            0,  # comment length
            0,  # disk number
            0,  # internal attributes
            FILE_MODE << 16,
            offset,
        )
        return record + entry.name + extra

    def close(self) -> Iterator[bytes]:
        start = self.offset
        self.directory.seek(0)
        while piece := self.directory.read(FLUSH_SIZE):
            self._emit(piece)
            yield self.sink.take()
        self.directory.close()
        size = self.offset - start
        count = self.count
        if count >= ZIP64_ENTRIES or size >= ZIP64_OFFSET or start >= ZIP64_OFFSET:
            end_record = self.offset
            self._emit(
                struct.pack(
                    "<4sQHHIIQQQQ",
                    b"PK\x06\x06",
                    44,  # the size of the rest of this record
                    UNIX << 8 | ZIP64_VERSION,
                    ZIP64_VERSION,
                    0,
                    0,
                    count,
                    count,
                    size,
                    start,
                )
            )
            self._emit(struct.pack("<4sIQI", b"PK\x06\x07", 0, end_record, 1))
            count, size, start = min(count, MAX_16), min(size, MAX_32), min(start, MAX_32)
        self._emit(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        yield self.sink.take()

    def abort(self) -> None:
        self.directory.close()
        self.sink.take()


@dataclass
class _ZipEntry:
    name: bytes
    method: int
    dos_time: tuple[int, int]
    zip64: bool
    header_offset: int
    compressor: isal_zlib.Compress | None
    crc: int = 0
    size: int = 0
    compressed: int = 0


class TarEncoder:
    """A streamed tar (PAX headers, for long and non-ASCII paths), plain or in one gzip
    stream that deflates or stores each member as ``compression`` says."""

    def __init__(self, compression: Compression | None = None) -> None:
        """``compression`` None: a plain tar."""
        self.sink = Sink()
        self.compression = compression
        self.gzip = (
            None if compression is None else GzipStream(self.sink, deflate=compression == "deflate")
        )
        self.held = HeldStart()
        self.sampling = False
        self.offset = 0
        self.member: Member | None = None
        self.written = 0

    @property
    def may_deflate(self) -> bool:
        return self.gzip is not None and (self.sampling or self.gzip.compressor is not None)

    def _emit(self, data: bytes) -> None:
        self.offset += len(data)
        if self.gzip is None:
            self.sink.write(data)
        else:
            self.gzip.write(data)

    def begin(self, member: Member) -> None:
        info = tarfile.TarInfo(member.path)
        info.size = member.size
        info.mtime = int(member.modified.timestamp())
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.member = member
        self.written = 0
        if self.gzip is not None and self.compression is not None:
            deflate = deflate_by_name(member.path, member.size, self.compression)
            self.sampling = deflate is None
            if deflate is not None:
                self.gzip.set_deflate(deflate)

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.sampling:
            if not self.held.add(chunk):
                return
            self._sampled()
            return
        self._emit(chunk)

    def _sampled(self) -> None:
        assert self.gzip is not None
        held = self.held.take()
        self.sampling = False
        self.gzip.set_deflate(sample_shrinks(held))
        self._emit(held)

    def end(self) -> None:
        assert self.member is not None
        if self.sampling:
            self._sampled()
        if self.written != self.member.size:
            # The header already promised member.size bytes; anything else corrupts the tar.
            raise StorageError(
                f"{self.member.path!r} has {self.written} bytes in storage, "
                f"not the {self.member.size} recorded"
            )
        self._emit(tarfile.NUL * (-self.written % tarfile.BLOCKSIZE))
        self.member = None

    def close(self) -> Iterator[bytes]:
        # Two empty blocks end a tar; tar pads the whole to a multiple of its record size.
        self._emit(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        self._emit(tarfile.NUL * (-self.offset % tarfile.RECORDSIZE))
        if self.gzip is not None:
            self.gzip.close()
        yield self.sink.take()

    def abort(self) -> None:
        self.sink.take()


def _dos_time(moment: datetime) -> tuple[int, int]:
    """(time, date) as MS-DOS stores them, in UTC, clamped to 1980 (its epoch) and later."""
    moment = max(moment.astimezone(UTC), DOS_EPOCH)
    time = moment.hour << 11 | moment.minute << 5 | moment.second // 2
    date = (moment.year - 1980) << 9 | moment.month << 5 | moment.day
    return time, date


def next_piece(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)
