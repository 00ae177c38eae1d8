"""importArchive of many small files, and of a tar.gz whose PAX header claims 1,000 MiB.

``bench/transfer.py --imports 10000 [--baseline /tmp/base]`` runs this: a tar.gz of
N small files (100-400 random bytes each) is sent to a live server (SQLite, local storage)
as a GraphQL multipart ``importArchive``, and timed: entries/s, against the target of
>= 2,000 entries/s. Then a ~1 MB tar.gz holding one PAX extended header of 1,000 MiB (one
``comment`` record of repeated bytes) is sent: the answer and the server's peak RSS
(VmHWM) before and after it. With ``--baseline`` (the quiver package of another commit,
e.g. ``git archive <commit> quiver | tar -x -C /tmp/base``) the same runs go to a server
of that code first, and the ratios after/before are printed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from transfer import CREATE, PROJECT_DIR, graphql, peak_rss_mb, start_uvicorn

IMPORT = """mutation($input: ImportArchiveInput!) { importArchive(input: $input) {
  fileCount userErrors { field message code } } }"""
PAX_MIB = 1000


def small_files_tar_gz(count: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for index in range(count):
            data = os.urandom(100 + index % 300)
            info = tarfile.TarInfo(f"dir{index // 1000}/file-{index}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pax_bomb_tar_gz(mib: int) -> bytes:
    """One PAX header ('x') of ``mib`` MiB, then a small regular file: about 1 MB gzipped."""
    length = mib * 1024 * 1024
    body_length = length - len(" comment=\n")
    digits = len(str(length))
    record_length = length  # "<length> comment=<value>\n" is exactly `length` bytes
    value_length = body_length - digits
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = record_length

    def chunks() -> Iterator[bytes]:
        yield header.tobuf(format=tarfile.USTAR_FORMAT)
        yield f"{record_length} comment=".encode()
        block = b"x" * (1024 * 1024)
        remaining = value_length
        while remaining > 0:
            yield block[: min(remaining, len(block))]
            remaining -= min(remaining, len(block))
        yield b"\n"
        yield b"\0" * (-record_length % 512)
        data = b"hello"
        regular = tarfile.TarInfo("hello.txt")
        regular.size = len(data)
        yield regular.tobuf(format=tarfile.USTAR_FORMAT)
        yield data + b"\0" * (-len(data) % 512)
        yield b"\0" * 1024

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as out:
        for chunk in chunks():
            out.write(chunk)
    return buffer.getvalue()


def send(base_url: str, key: str, dataset_id: str, archive: bytes) -> tuple[float, Any]:
    operations = {"query": IMPORT, "variables": {"input": {"datasetId": dataset_id}}}
    operations["variables"]["input"]["archive"] = None
    started = time.perf_counter()
    response = httpx.post(
        f"{base_url}/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.archive"]}),
        },
        files={"0": ("archive.tar.gz", archive, "application/gzip")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    body = response.json()
    return seconds, (body.get("data", {}) and body["data"]["importArchive"]) or body


def measure(source_root: Path, data_dir: Path, small: bytes, bomb: bytes) -> dict[str, Any]:
    key = f"qvr_bench-{secrets.token_urlsafe(16)}"
    env = {
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": f"sqlite://{data_dir / 'quiver.db'}",
        "QUIVER_ADMIN_API_KEY": key,
        "PYTHONPATH": str(source_root),
    }
    server, base_url = start_uvicorn("quiver.app:app", env, app_dir=source_root)
    try:
        created = graphql(base_url, key, CREATE, {"name": "imports"})["createDataset"]
        seconds, result = send(base_url, key, created["dataset"]["id"], small)
        rss_before = peak_rss_mb(server.pid)
        other = graphql(base_url, key, CREATE, {"name": "bomb"})["createDataset"]
        bomb_seconds, bomb_result = send(base_url, key, other["dataset"]["id"], bomb)
        return {
            "seconds": seconds,
            "files": result.get("fileCount"),
            "errors": result.get("userErrors"),
            "rss_before_bomb": rss_before,
            "rss_after_bomb": peak_rss_mb(server.pid),
            "bomb_seconds": bomb_seconds,
            "bomb": bomb_result,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


def report(label: str, found: dict[str, Any], count: int) -> None:
    rate = count / found["seconds"]
    print(f"{label}: {count} entries in {found['seconds']:.2f} s = {rate:.0f} entries/s "
          f"(files {found['files']}, errors {found['errors']})")  # fmt: skip
    bomb = found["bomb"]
    answer = bomb.get("userErrors") or bomb.get("fileCount") or bomb
    print(
        f"{label}: PAX {PAX_MIB} MiB header: {found['bomb_seconds']:.2f} s, answer {answer!s:.160}"
    )
    print(f"{label}: peak RSS {found['rss_before_bomb']:.0f} MB before it, "
          f"{found['rss_after_bomb']:.0f} MB after")  # fmt: skip


def bench_imports(root: Path, count: int, baseline: Path | None) -> None:
    small = small_files_tar_gz(count)
    bomb = pax_bomb_tar_gz(PAX_MIB)
    print(f"{count} small files: {len(small) / 1e6:.1f} MB tar.gz; "
          f"PAX bomb: {len(bomb) / 1e6:.1f} MB tar.gz", flush=True)  # fmt: skip
    before = None
    if baseline is not None:
        before = measure(baseline, root / "baseline", small, bomb)
        report("baseline ", before, count)
    after = measure(PROJECT_DIR, root / "this-tree", small, bomb)
    report("this tree", after, count)
    rate = count / after["seconds"]
    print(f"target >= 2000 entries/s: {'met' if rate >= 2000 else 'MISSED'} ({rate:.0f})")
    if before is not None:
        print(f"entries/s after/before: {before['seconds'] / after['seconds']:.2f}x; "
              f"PAX bomb peak RSS after/before: "
              f"{after['rss_after_bomb'] / before['rss_after_bomb']:.3f}x")  # fmt: skip
