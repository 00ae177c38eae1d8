"""Whether an archive member is worth deflating, and a gzip stream that stores what is not.

Deflate gains nothing on bytes that are already compressed (media, ``.npy`` of floats,
``.pt``, ``.tfrecord``…) and still costs far more than storing them, which runs at the
speed of a copy. ``auto`` decides per member: by its suffix when that is conclusive, else
by deflating its first SAMPLE_SIZE bytes.

Deflate and CRC-32 come from ISA-L (``isal``): its deflate is about 20 times zlib's level
6 for output about a tenth larger, and its CRC-32 runs at memory speed where zlib's costs
about as much as sending the bytes. The output is plain deflate, read by any inflater.
"""

from __future__ import annotations

import struct
from pathlib import PurePosixPath
from typing import Literal, Protocol

from isal import isal_zlib

crc32 = isal_zlib.crc32
Compression = Literal["none", "auto", "deflate"]
COMPRESSIONS: tuple[Compression, ...] = ("none", "auto", "deflate")
COMPRESS_LEVEL = isal_zlib.ISAL_DEFAULT_COMPRESSION
SAMPLE_SIZE = 64 * 1024
SAMPLE_LEVEL = isal_zlib.ISAL_BEST_SPEED
# A member is deflated only when its sample shrinks by at least this fraction: saving
# less is not worth a tenth of the throughput.
MIN_SAVING = 0.10
# Deflating these again costs time and saves nothing, whatever a sample says.
COMPRESSED_SUFFIXES = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".webp",
        ".avif",
        ".heic",
        ".mp3",
        ".mp4",
        ".m4a",
        ".ogg",
        ".opus",
        ".webm",
        ".mkv",
        ".mov",
        ".flac",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".parquet",
        ".npz",
    ]
)
MAX_STORED_BLOCK = 0xFFFF
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name or time, any OS
LAST_EMPTY_STORED_BLOCK = b"\x01\x00\x00\xff\xff"


def deflate_by_name(path: str, size: int, compression: Compression) -> bool | None:
    """Whether to deflate a member, or None when only a sample of its bytes can tell."""
    if compression == "none" or size == 0:
        return False
    if compression == "deflate":
        return True
    if PurePosixPath(path).suffix.lower() in COMPRESSED_SUFFIXES:
        return False
    return None


def new_deflater() -> isal_zlib.Compress:
    """A raw deflate stream (no zlib or gzip frame: zip and GzipStream write their own)."""
    return isal_zlib.compressobj(COMPRESS_LEVEL, isal_zlib.DEFLATED, -15)


def sample_shrinks(sample: bytes) -> bool:
    """Whether deflating the start of a member saves at least MIN_SAVING of it."""
    sample = sample[:SAMPLE_SIZE]
    if not sample:
        return False
    return len(isal_zlib.compress(sample, SAMPLE_LEVEL)) <= len(sample) * (1 - MIN_SAVING)


class HeldStart:
    """A member's first bytes, held until there are enough to sample."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Hold ``chunk``; True once SAMPLE_SIZE bytes are held."""
        self.parts.append(bytes(chunk))
        self.size += len(chunk)
        return self.size >= SAMPLE_SIZE

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


class Writable(Protocol):
    def write(self, data: bytes | memoryview) -> int: ...


class GzipStream:
    """One gzip member whose bytes are deflated or stored, run by run.

    Stored runs are written as deflate's stored blocks, so incompressible members pass
    through at the speed of a copy. Runs join at byte boundaries: a deflated run ends with
    a sync flush, the way pigz joins blocks deflated independently (RFC 1951 allows it).
    """

    def __init__(self, out: Writable, *, deflate: bool) -> None:
        self.out = out
        self.crc = 0
        self.size = 0
        self.compressor: isal_zlib.Compress | None = None
        out.write(GZIP_HEADER)
        self.set_deflate(deflate)

    def set_deflate(self, deflate: bool) -> None:
        if deflate and self.compressor is None:
            self.compressor = new_deflater()
        elif not deflate and self.compressor is not None:
            self.out.write(self.compressor.flush(isal_zlib.Z_SYNC_FLUSH))
            self.compressor = None

    def write(self, data: bytes) -> None:
        self.crc = crc32(data, self.crc)
        self.size += len(data)
        if self.compressor is not None:
            self.out.write(self.compressor.compress(data))
            return
        view = memoryview(bytes(data))  # bytes: the blocks are views of bytes that stay put
        for start in range(0, len(view), MAX_STORED_BLOCK):
            block = view[start : start + MAX_STORED_BLOCK]
            # BFINAL 0, BTYPE 00 (stored), padded to a byte; then LEN and its complement.
            self.out.write(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))
            self.out.write(block)

    def close(self) -> None:
        if self.compressor is not None:
            self.out.write(self.compressor.flush())  # ends with the final block
        else:
            self.out.write(LAST_EMPTY_STORED_BLOCK)
        self.out.write(struct.pack("<II", self.crc, self.size & 0xFFFF_FFFF))
