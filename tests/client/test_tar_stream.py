"""The pull's tar reader against tarfile's own writer: every format, any chunking."""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterator

import pytest

from quiver.client.tar_stream import TarError, TarStream

LONG = "deep/" * 40 + "name-longer-than-a-ustar-field.bin"  # 234 characters


def make_tar(tar_format: int) -> tuple[bytes, list[tuple[str, bool, bytes]]]:
    rng = random.Random(tar_format)
    entries = [
        ("plain.txt", True, b"hello\n"),
        ("empty", True, b""),
        ("one-block.bin", True, rng.randbytes(512)),
        ("block-and-one.bin", True, rng.randbytes(513)),
        ("big/two-mib.bin", True, rng.randbytes(2 * 1024 * 1024 + 7)),
        ("folder", False, b""),
        ("link", False, b""),
        (LONG, True, rng.randbytes(1000)),
    ]
    if tar_format != tarfile.USTAR_FORMAT:  # ustar has no room for these names
        entries.append(("ünïcødé/名前.txt", True, "データ".encode()))
        entries.append(("x" * 120, True, b"past the 100-byte name field"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for name, regular, data in entries:
            info = tarfile.TarInfo(name)
            if name == "folder":
                info.type = tarfile.DIRTYPE
            elif name == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "plain.txt"
            else:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if regular else None)
    return buffer.getvalue(), entries


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    at, index = 0, 0
    while at < len(data):
        size = sizes[index % len(sizes)]
        yield data[at : at + size]
        at += size
        index += 1


@pytest.mark.parametrize(
    "tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]
)
@pytest.mark.parametrize("sizes", [[1 << 20], [1], [511, 513, 7], [65536, 3]])
def test_every_member_comes_out_whole_whatever_the_chunks(
    tar_format: int, sizes: list[int]
) -> None:
    data, entries = make_tar(tar_format)
    if sizes == [1]:
        data = data[: 3 * 1024]  # a byte at a time: the first members are enough
        entries = entries[:3]
    stream = TarStream(chunked(data, sizes))
    seen: list[tuple[str, bool, bytes]] = []
    for member in stream.members():
        # The regular ones read in two parts; the rest never read (skipped by the loop).
        body = stream.read(300) + stream.read() if member.regular else b""
        assert member.size == len(body) or not member.regular
        seen.append((member.name, member.regular, body))
        if len(seen) == len(entries):
            break
    assert seen == entries


def test_a_member_left_unread_is_skipped_and_the_next_is_right() -> None:
    data, entries = make_tar(tarfile.PAX_FORMAT)
    stream = TarStream(chunked(data, [4096]))
    names = []
    for member in stream.members():
        names.append(member.name)
        if member.name == LONG:
            assert stream.read() == entries[7][2]
    assert names == [name for name, _, _ in entries]


def test_a_stream_cut_short_raises_instead_of_a_short_member() -> None:
    data, _ = make_tar(tarfile.PAX_FORMAT)
    stream = TarStream(chunked(data[: 5 * 1024], [1000]))

    def drain() -> list[str]:
        names = []
        for member in stream.members():
            names.append(member.name)
            while stream.read(100):
                pass
        return names

    with pytest.raises(TarError, match="ends in the middle"):
        drain()


def test_a_damaged_header_is_refused() -> None:
    data, _ = make_tar(tarfile.PAX_FORMAT)
    damaged = bytearray(data)
    damaged[0] ^= 0x20  # the first header's name: the checksum no longer matches
    with pytest.raises(TarError, match="checksum"):
        next(TarStream(iter([bytes(damaged)])).members())
    with pytest.raises(TarError, match="octal"):
        next(TarStream(iter([b"not a tar at all".ljust(512, b"z")])).members())
