"""Upload a large file through tus and download it through /files/{id}, against cp and cat.

Starts a live uvicorn (SQLite, local storage) whose data dir sits in the same temporary
directory as a file of random bytes (2 GiB by default), and times, on that one disk:

- ``cp file copy``              baseline of the upload (bytes from one file into another)
- ``cat file > copy``           baseline of the download (bytes out of a file, onto disk)
- ``cat file > /dev/null``      reading alone, baseline of a download that is discarded
- a tus upload: tuspy, or a streaming httpx client, in PATCHes of --chunk-mib
- the download of the new file through its downloadUrl, streamed to disk, and to /dev/null
- for scale, the same upload to a bare uvicorn app that only drops the body: the ceiling
  any ASGI app has on this machine (one Python thread parses every byte)
- and a bare uvicorn app that only sends: one 1 MiB buffer over and over (uvicorn's own cost
  of sending, with bytes that never leave the CPU's cache), and the file's own bytes read
  into memory at start-up, each sent once (the memory traffic a download cannot avoid,
  without the file system)

Each step runs --runs times; medians are reported. Dirty pages are synced before every
timed step. On VMs the first touch of guest memory is slow (page cache growing into it
runs at a fraction of its later speed), so a scratch file twice the size is written and
deleted first, to spare whichever step runs first. Prints throughput, upload / cp,
download / (cat > copy), and the server's peak RSS (VmHWM).

    python bench/transfer.py [--mib 2048] [--chunk-mib 32] [--client tuspy|httpx]
                             [--runs 3] [--dir /var/tmp]

``QUIVER_BENCH_SERVER=granian`` serves Quiver and both bare apps with granian instead of
uvicorn (``pip install -e '.[granian]'``), to compare the ceilings.

With ``--archives`` it times whole-dataset archives instead: --archive-files files of
random bytes (``.bin``, --mib MiB in all) are uploaded, then downloaded one by one through
/files/{id} (the baseline) and as one archive in each format and compression, all to
/dev/null; it prints each throughput and its ratio to the baseline (target: zip auto
>= 0.80).

    python bench/transfer.py --archives [--mib 1024] [--archive-files 8] [--runs 3]

With ``--imports N`` it times importArchive of a tar.gz of N small files (target >= 2,000
entries/s) and a tar.gz with a 1,000 MiB PAX header (``bench/archive_import.py``),
against the quiver package in ``--baseline`` when given.

    python bench/transfer.py --imports 10000 [--baseline /tmp/base]
With ``--small-files N`` it times N files of 4 KiB sent one GraphQL request each against
the transfer API (one batch call, one pack, one commitFiles), on each of --databases
(target: >= 1,000 files/s). With ``--s3-multipart`` it times --mib MiB through a presigned
multipart upload to SeaweedFS against obstore putting it directly (target >= 0.9x), and
the server's CPU seconds meanwhile (bench/transfer_api.py).

    python bench/transfer.py --small-files 1000 [--databases sqlite,postgres] [--runs 3]
    python bench/transfer.py --s3-multipart [--mib 2048] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tusclient.client import TusClient

MIB = 1024 * 1024
PROJECT_DIR = Path(__file__).resolve().parent.parent
CREATE = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { message } } }"""
FILE = """query($id: ID!, $path: String!) { dataset(id: $id) {
  file(path: $path) { size sha256 downloadUrl } } }"""
DRAIN_APP = '''
async def app(scope, receive, send):
    """Read and drop a request body: uvicorn's own cost of receiving bytes."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
'''

SEND_APP = '''
import os

SIZE = int(os.environ["SEND_BYTES"])
CHUNK = bytes(1024 * 1024)
# With SEND_FILE, the file's own bytes, read into memory at start-up and sent once each
# (1 MiB slices): the same bytes as a download, without the file system in the way.
SOURCE = os.environ.get("SEND_FILE")
GRANIAN = os.environ.get("QUIVER_BENCH_SERVER") == "granian"
if SOURCE:
    VIEW = memoryview(bytearray(SIZE))
    with open(SOURCE, "rb", buffering=0) as file:
        filled = 0
        while filled < SIZE:  # one read() stops short of 2 GiB
            count = file.readinto(VIEW[filled:])
            assert count, "the file is shorter than SEND_BYTES"
            filled += count


async def app(scope, receive, send):
    """Send SIZE bytes from memory: uvicorn's own cost of sending a response body."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-length", str(SIZE).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if SOURCE:
        step = len(CHUNK)
        for start in range(0, SIZE, step):
            more = start + step < SIZE
            body = VIEW[start : start + step]
            if GRANIAN:  # memoryview bodies: 0.5 GiB in 4.5 s here, as bytes in 0.19 s
                body = bytes(body)
            await send({"type": "http.response.body", "body": body, "more_body": more})
        return
    left = SIZE
    while left > len(CHUNK):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        left -= len(CHUNK)
    await send({"type": "http.response.body", "body": CHUNK[:left]})
'''


def write_random_file(path: Path, mib: int) -> str:
    """Fill path with random bytes, 64 MiB at a time; return their sha256."""
    hasher = hashlib.sha256()
    with path.open("wb") as file:
        for start in range(0, mib, 64):
            block = os.urandom(min(64, mib - start) * MIB)
            hasher.update(block)
            file.write(block)
    return hasher.hexdigest()


def warm_memory(directory: Path, mib: int) -> None:
    """Write then delete a scratch file, so that the page cache has been through the RAM."""
    scratch = directory / "scratch.bin"
    block = bytes(64 * MIB)
    with scratch.open("wb") as file:
        for _ in range(0, mib, 64):
            file.write(block)
    scratch.unlink()
    os.sync()


def timed(step: Callable[[], Any]) -> float:
    os.sync()
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def shell(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


STARTUP_SECONDS = 120
SERVER = os.environ.get("QUIVER_BENCH_SERVER", "uvicorn")


def start_uvicorn(
    app: str, env: dict[str, str], app_dir: Path = PROJECT_DIR
) -> tuple[subprocess.Popen[bytes], str]:
    """Serve ``app`` with the server ``QUIVER_BENCH_SERVER`` names: uvicorn (the default)
    or granian (one worker process; ``serving_pid`` finds it)."""
    port = free_port()
    if SERVER == "granian":
        command = [
            sys.executable, "-m", "granian", app, "--interface", "asgi",
            "--working-dir", str(app_dir), "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir),
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=PROJECT_DIR, env={**os.environ, **env}, stdin=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}"
    # Importing the analytics stack alone takes ~30 s on a shared, loaded 2-core machine.
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/healthz")
            return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[2]} {app} did not answer within {STARTUP_SECONDS} s")


def time_sender(app_dir: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds of downloading the bare sender's body (``SEND_APP`` in ``app_dir``)."""
    sender, sender_url = start_uvicorn("sender:app", env, app_dir=app_dir)
    try:
        return median_seconds(runs, lambda: download(f"{sender_url}/bytes", "-", os.devnull))
    finally:
        sender.terminate()
        sender.wait(timeout=30)


def serving_pid(pid: int) -> int:
    """The process that serves requests: granian's worker, uvicorn itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def start_quiver(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A Quiver server on SQLite in ``data_dir`` with a fresh admin key: (process, url, key)."""
    key = f"qvr_bench-{secrets.token_urlsafe(16)}"
    env = {
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": f"sqlite://{data_dir / 'quiver.db'}",
        "QUIVER_ADMIN_API_KEY": key,
    }
    server, base_url = start_uvicorn("quiver.app:app", env)
    return server, base_url, key


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{serving_pid(pid)}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def graphql(base_url: str, key: str, query: str, variables: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.json()["data"]


def upload_with_tuspy(
    url: str, key: str, source: Path, metadata: dict[str, str], chunk: int
) -> None:
    """tuspy reads each chunk into memory and PATCHes it with requests."""
    client = TusClient(url, headers={"Authorization": f"Bearer {key}"})
    with source.open("rb") as stream:
        client.uploader(file_stream=stream, chunk_size=chunk, metadata=metadata).upload()


def upload_with_httpx(
    url: str, key: str, source: Path, metadata: dict[str, str], chunk: int
) -> None:
    """One POST, then PATCHes of ``chunk`` bytes streamed from the file in 1 MiB reads."""
    headers = {"Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    size = source.stat().st_size
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    with httpx.Client(headers=headers, timeout=600) as client, source.open("rb") as file:
        created = client.post(url, headers={"Upload-Length": str(size), "Upload-Metadata": encoded})
        location = created.headers["location"]
        offset = 0
        while offset < size:
            length = min(chunk, size - offset)

            def body(length: int = length) -> Iterator[bytes]:
                remaining = length
                while remaining:
                    piece = file.read(min(MIB, remaining))
                    remaining -= len(piece)
                    yield piece

            response = client.patch(
                location,
                headers={
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                },
                content=body(),
            )
            response.raise_for_status()
            offset = int(response.headers["upload-offset"])


def put_to_drain(url: str, source: Path, chunk: int) -> None:
    """The same PATCHes, with requests like tuspy, to the bare app that drops them."""
    import requests

    with requests.Session() as session, source.open("rb") as file:
        while data := file.read(chunk):
            session.patch(url, data=data).raise_for_status()


def download(url: str, key: str, target: str) -> int:
    """GET over a plain socket, recv_into a 4 MiB buffer, write it out: a client as cheap
    as cat, so that the server is what is measured (httpx's parser halves the rate)."""
    parts = urlsplit(url)
    resource = f"{parts.path}?{parts.query}" if parts.query else parts.path
    request = (
        f"GET {resource} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    buffer = bytearray(4 * MIB)
    view = memoryview(buffer)
    received = 0
    with socket.create_connection((parts.hostname, parts.port)) as sock, open(target, "wb") as out:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            count = sock.recv_into(buffer)
            if not count:
                raise RuntimeError(f"the server closed before its headers: {head!r}")
            head += bytes(view[:count])
        status, _, rest = head.partition(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"download failed: {status[:200]!r}")
        out.write(rest)
        received = len(rest)
        while count := sock.recv_into(buffer):
            out.write(view[:count])
            received += count
    return received


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_seconds(
    runs: int, step: Callable[[], Any], after: Callable[[], Any] = lambda: None
) -> float:
    times = []
    for _ in range(runs):
        times.append(timed(step))
        after()
    return statistics.median(times)


ARCHIVES = [
    ("zip", "auto"),
    ("zip", "deflate"),
    ("zip", "none"),
    ("tar", "auto"),
    ("tar.gz", "auto"),
    ("tar.gz", "deflate"),
]


def bench_archives(root: Path, mib: int, files: int, runs: int, chunk: int) -> None:
    """Archives of ``files`` random files against downloading each through /files/{id}."""
    per_file = max(1, mib // files)
    sources = []
    for number in range(files):
        source = root / f"part-{number}.bin"
        write_random_file(source, per_file)
        sources.append(source)
    total = sum(source.stat().st_size for source in sources)
    print(f"{files} files of {per_file} MiB of random bytes, {runs} runs per step")
    server, base_url, key = start_quiver(root / "data")
    try:
        created = graphql(base_url, key, CREATE, {"name": "archives"})["createDataset"]
        dataset_id = created["dataset"]["id"]
        urls = []
        for source in sources:
            metadata = {"datasetId": dataset_id, "path": source.name}
            upload_with_httpx(f"{base_url}/uploads/", key, source, metadata, chunk)
            variables = {"id": dataset_id, "path": source.name}
            urls.append(graphql(base_url, key, FILE, variables)["dataset"]["file"]["downloadUrl"])

        def each_file() -> None:
            assert sum(download(url, key, os.devnull) for url in urls) == total

        steps: dict[str, Callable[[], None]] = {"baseline": each_file}
        for archive_format, compression in ARCHIVES:
            query = f"?format={archive_format}&compression={compression}"
            url = f"{base_url}/datasets/{dataset_id}/archive{query}"

            def archive(url: str = url) -> None:
                assert download(url, key, os.devnull) >= total * 0.99

            steps[f"archive {archive_format}, compression={compression}"] = archive
        # Runs interleave the steps, so a neighbour's load on a shared machine spreads over
        # all of them; the server's CPU seconds are counted too, as it is less sensitive.
        walls: dict[str, list[float]] = {name: [] for name in steps}
        cpus: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(runs):
            for name, step in steps.items():
                cpu = cpu_seconds(server.pid)
                walls[name].append(timed(step))
                cpus[name].append(cpu_seconds(server.pid) - cpu)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    size_mb = total / 1e6
    wall = {name: statistics.median(times) for name, times in walls.items()}
    cpu = {name: statistics.median(times) for name, times in cpus.items()}
    print(
        f"{'':<36}{'wall':>9} {'MB/s':>7} {'/ baseline':>11}  {'server CPU':>10} {'/ baseline':>11}"
    )
    for name in steps:
        label = "/files/{id}, each file (baseline)" if name == "baseline" else name
        print(f"{label:<36}{wall[name]:7.2f} s {size_mb / wall[name]:7.0f}"
              f" {wall['baseline'] / wall[name]:10.2f}x  {cpu[name]:8.2f} s"
              f" {cpu['baseline'] / cpu[name]:10.2f}x")  # fmt: skip
    print("target: zip auto >= 0.80x baseline")
    print(f"server peak RSS (VmHWM)             {rss:6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=2048, help="file size in MiB")
    parser.add_argument("--chunk-mib", type=int, default=32, help="tus PATCH size in MiB")
    parser.add_argument("--client", choices=["tuspy", "httpx"], default="tuspy")
    parser.add_argument("--runs", type=int, default=3, help="runs of each step (median)")
    parser.add_argument("--dir", default=None, help="where the file and the server data go")
    parser.add_argument("--archives", action="store_true", help="time archives instead")
    parser.add_argument("--archive-files", type=int, default=8, help="files in the archive")
    parser.add_argument("--imports", type=int, help="time importArchive of this many files")
    parser.add_argument("--baseline", type=Path, help="the baseline's source folder (--imports)")
    parser.add_argument("--small-files", type=int, default=0, help="time N files of 4 KiB")
    parser.add_argument("--databases", default="sqlite,postgres", help="for --small-files")
    parser.add_argument("--s3-multipart", action="store_true", help="time direct S3 uploads")
    parser.add_argument("--part-workers", type=int, default=8, help="parts in flight (S3)")
    arguments = parser.parse_args()
    if arguments.imports:
        from archive_import import bench_imports

        with tempfile.TemporaryDirectory(dir=arguments.dir, prefix="quiver-bench-") as temp:
            bench_imports(Path(temp), arguments.imports, arguments.baseline)
        return
    runs = arguments.runs
    chunk = arguments.chunk_mib * MIB
    if arguments.small_files or arguments.s3_multipart:
        import transfer_api

        with tempfile.TemporaryDirectory(dir=arguments.dir, prefix="quiver-bench-") as temp:
            if arguments.s3_multipart:
                transfer_api.s3_multipart(Path(temp), arguments.mib, runs, arguments.part_workers)
                return
            for database in arguments.databases.split(","):
                transfer_api.small_files(Path(temp), arguments.small_files, 4096, runs, database)
        return
    if arguments.archives:
        with tempfile.TemporaryDirectory(dir=arguments.dir, prefix="quiver-bench-") as temp:
            warm_memory(Path(temp), 2 * arguments.mib)
            bench_archives(Path(temp), arguments.mib, arguments.archive_files, runs, chunk)
        return

    with tempfile.TemporaryDirectory(dir=arguments.dir, prefix="quiver-bench-") as temp:
        root = Path(temp)
        source, copy = root / "source.bin", root / "copy.bin"
        print(f"{arguments.mib} MiB of random bytes in {source}, {runs} runs per step")
        warm_memory(root, 2 * arguments.mib)
        sha256 = write_random_file(source, arguments.mib)
        size_mb = source.stat().st_size / 1e6

        cp = median_seconds(runs, lambda: shell(f"cp '{source}' '{copy}'"), copy.unlink)
        cat_copy = median_seconds(runs, lambda: shell(f"cat '{source}' > '{copy}'"), copy.unlink)
        cat_null = median_seconds(runs, lambda: shell(f"cat '{source}' > /dev/null"))

        (root / "drain.py").write_text(textwrap.dedent(DRAIN_APP))
        drain, drain_url = start_uvicorn("drain:app", {}, app_dir=root)
        try:
            drain_pid = serving_pid(drain.pid)
            cpu = cpu_seconds(drain_pid)
            ceiling = median_seconds(runs, lambda: put_to_drain(drain_url, source, chunk))
            drain_cpu = (cpu_seconds(drain_pid) - cpu) / runs
        finally:
            drain.terminate()
            drain.wait(timeout=30)
        (root / "sender.py").write_text(textwrap.dedent(SEND_APP))
        size_env = {"SEND_BYTES": str(source.stat().st_size)}
        send_ceiling = time_sender(root, size_env, runs)
        send_file_ceiling = time_sender(root, size_env | {"SEND_FILE": str(source)}, runs)

        server, base_url, key = start_quiver(root / "data")
        try:
            created = graphql(base_url, key, CREATE, {"name": "bench"})["createDataset"]
            dataset_id = created["dataset"]["id"]
            upload = upload_with_tuspy if arguments.client == "tuspy" else upload_with_httpx
            paths = iter(f"bench-{run}.bin" for run in range(runs))
            urls: list[str] = []

            def upload_once() -> None:
                path = next(paths)
                metadata = {"datasetId": dataset_id, "path": path}
                upload(f"{base_url}/uploads/", key, source, metadata, chunk)
                variables = {"id": dataset_id, "path": path}
                file = graphql(base_url, key, FILE, variables)["dataset"]["file"]
                assert file["sha256"] == sha256, "the server stored other bytes"
                urls.append(file["downloadUrl"])

            server_pid = serving_pid(server.pid)
            cpu = cpu_seconds(server_pid)
            uploaded = median_seconds(runs, upload_once)
            upload_cpu = (cpu_seconds(server_pid) - cpu) / runs
            upload_rss = peak_rss_mb(server.pid)

            def fetch(target: str) -> None:
                assert download(urls[0], key, target) == source.stat().st_size

            downloaded = median_seconds(runs, lambda: fetch(str(copy)), copy.unlink)
            cpu = cpu_seconds(server_pid)
            discarded = median_seconds(runs, lambda: fetch(os.devnull))
            download_cpu = (cpu_seconds(server_pid) - cpu) / runs
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    def line(name: str, seconds: float) -> str:
        return f"{name:<36}{seconds:7.2f} s {size_mb / seconds:7.0f} MB/s"

    print(line("cp file copy", cp))
    print(line("cat file > copy", cat_copy))
    print(line("cat file > /dev/null", cat_null))
    print(line(f"bare {SERVER}, body dropped ({arguments.chunk_mib} MiB)", ceiling))
    print(line(f"tus upload ({arguments.client}, {arguments.chunk_mib} MiB)", uploaded))
    print(line("download /files/{id} > copy", downloaded))
    print(line("download /files/{id} > /dev/null", discarded))
    # Issue 3 asked 0.80x of cp and cat: past what a bare ASGI server reaches here. Issue 13
    # set the targets against those bare servers instead (the lines below).
    print(f"upload / cp                         {cp / uploaded:6.2f}x  (issue 3: 0.80)")
    print(f"download / (cat > copy)             {cat_copy / downloaded:6.2f}x  (issue 3: 0.80)")
    print(f"download to null / (cat > null)     {cat_null / discarded:6.2f}x")
    print(line(f"bare {SERVER}, body sent from memory", send_ceiling))
    print(f"upload / bare {SERVER} (drain)       {ceiling / uploaded:6.2f}x  (target >= 0.70)")
    print(f"download to null / bare {SERVER} (send) {send_ceiling / discarded:6.2f}x"
          "  (target >= 0.80)")  # fmt: skip
    print(line(f"bare {SERVER}, the file's bytes from memory", send_file_ceiling))
    print(f"download to null / bare {SERVER} (file's bytes)"
          f" {send_file_ceiling / discarded:6.2f}x")  # fmt: skip
    print(f"server CPU per upload / download    {upload_cpu:6.2f} s / {download_cpu:.2f} s"
          "  (mean; the download to /dev/null)")  # fmt: skip
    print(f"bare {SERVER} CPU per drained upload   {drain_cpu:6.2f} s")
    print(f"server peak RSS (VmHWM)             {rss:6.0f} MB  (target < 200;"
          f" {upload_rss:.0f} MB after the uploads)")  # fmt: skip


if __name__ == "__main__":
    main()
