"""COCO export and import of a version with many box annotations, against plain scripts.

Seeds a dataset (100,000 image files sharing one blob, a sample each at 640 x 480, 20
BOUNDING_BOX labels, 500,000 boxes: 5 a sample) with bulk inserts, snapshots it with
``createVersion``, then measures, each in a fresh child process so that peak RSS (VmHWM,
reset just before) is the operation's own:

- Quiver: ``GET /versions/{id}/annotations?format=coco`` streamed to a file by an httpx
  client over loopback from the app under uvicorn in the same process;
- baseline: a plain script that reads the same version's samples, labels and annotations
  with the raw driver (sqlite3 / asyncpg), builds the COCO dict in memory and
  ``json.dump``s it to a file. Target: Quiver <= 1.5x its time at <= 1/4 of its peak RSS;
- Quiver: ``importAnnotations`` of Quiver's export file into a second dataset holding the
  same 100,000 files (multipart upload), against ``json.load`` of that file as a baseline
  (what any import must at least do).

Peak RSS is reported whole and as growth over the process's RSS just before the operation
(the Quiver child carries the app's imports, ~150 MB, that the baseline script does not).

    python bench/annotations.py [--samples 100000] [--per-sample 5] [--labels 20]
        [--dir /var/tmp] [--database-url postgres://postgres@127.0.0.1:5432/db]
        [--rounds 1] [--skip-import]

``--rounds N`` runs the export and its baseline N times, alternately (so a shared machine's
load falls on both alike), and reports each one's fastest run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

# The baseline's child process imports no more than a plain script would (sqlite3, asyncpg,
# json): Quiver and its dependencies are imported by the functions that use them.
if TYPE_CHECKING:
    import httpx

WIDTH, HEIGHT = 640, 480
BATCH = 5000
CREATE_DATASET = """mutation($name: String!) { createDataset(input: {name: $name}) {
  dataset { id } userErrors { message } } }"""
CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id}) {
  version { id } userErrors { message } } }"""
IMPORT = """mutation($input: ImportAnnotationsInput!) { importAnnotations(input: $input) {
  annotationCount losses { message } userErrors { message } } }"""


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def path_of(index: int) -> str:
    return f"images/{index // 1000:03d}/{index:07d}.png"


# --- Seeding (in the parent) ----------------------------------------------------------------


async def _graphql(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    assert payload.get("userErrors", []) == [], payload
    return payload


async def _files(dataset_pk: int, samples: int, storage_url: str) -> None:
    from quiver.resolvers.blobs import store_blob
    from quiver.resolvers.files import FileWrite, put_files
    from quiver.storage import storage_from_url

    async def one() -> Any:
        yield b"\x89PNG bench image"

    blob = await store_blob(storage_from_url(storage_url), one())
    for start in range(0, samples, 1000):
        writes = [
            FileWrite(path_of(i), blob, "image/png")
            for i in range(start, min(samples, start + 1000))
        ]
        await put_files(dataset_pk, writes)


async def _annotations(dataset_pk: int, arguments: argparse.Namespace) -> None:
    from quiver.models import Annotation, DatasetFile, Label, LabelKind, Sample, SampleStatus

    now = datetime.now(UTC)
    labels = [
        Label(dataset_id=dataset_pk, name=f"class-{i:02d}", kind=LabelKind.BOUNDING_BOX)
        for i in range(arguments.labels)
    ]
    await Label.bulk_create(labels)
    label_rows = await Label.filter(dataset_id=dataset_pk).order_by("id").values("id")
    label_ids = [int(row["id"]) for row in label_rows]
    file_ids = (
        await DatasetFile.filter(dataset_id=dataset_pk)
        .order_by("path")
        .values_list("id", flat=True)
    )
    samples = [
        Sample(
            dataset_id=dataset_pk,
            file_id=file_id,
            status=SampleStatus.LABELED,
            width=WIDTH,
            height=HEIGHT,
            created_at=now,
            updated_at=now,
        )
        for file_id in file_ids
    ]
    await Sample.bulk_create(samples, batch_size=BATCH)
    sample_ids = (
        await Sample.filter(dataset_id=dataset_pk).order_by("id").values_list("id", flat=True)
    )
    rng = random.Random(0)
    pending: list[Annotation] = []
    for sample_id in sample_ids:
        for _ in range(arguments.per_sample):
            w, h = rng.randint(4, 200), rng.randint(4, 200)
            x, y = rng.randint(0, WIDTH - w), rng.randint(0, HEIGHT - h)
            pending.append(
                Annotation(
                    dataset_id=dataset_pk,
                    sample_id=sample_id,
                    label_id=rng.choice(label_ids),
                    geometry={"x": x, "y": y, "width": w, "height": h},
                    created_at=now,
                    updated_at=now,
                )
            )
        if len(pending) >= BATCH:
            await Annotation.bulk_create(pending, batch_size=BATCH)
            pending = []
    if pending:
        await Annotation.bulk_create(pending, batch_size=BATCH)


async def seed(arguments: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    import httpx
    from tortoise import Tortoise

    from quiver import db
    from quiver.app import create_app
    from quiver.auth import ensure_admin_key
    from quiver.config import Settings
    from quiver.ids import decode_global_id

    settings = Settings(
        data_dir=data_dir, database_url=arguments.database_url or "", migrate_on_start=False
    )
    await db.migrate(settings)
    await Tortoise.init(
        config=db.tortoise_config(settings.database_url), _enable_global_fallback=True
    )
    try:
        key = f"qvr_bench-{secrets.token_urlsafe(16)}"
        await ensure_admin_key(key)
        app = create_app(settings, manage_database=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://quiver", timeout=None
        ) as client:
            ids = []
            names = ("exported",) if arguments.skip_import else ("exported", "imported")
            for name in names:
                created = await _graphql(client, key, CREATE_DATASET, name=name)
                ids.append(created["dataset"]["id"])
                started = time.perf_counter()
                dataset_pk = decode_global_id(ids[-1], "Dataset") or 0
                await _files(dataset_pk, arguments.samples, settings.storage_url)
                print(
                    f"seeded {arguments.samples} files in {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            started = time.perf_counter()
            await _annotations(decode_global_id(ids[0], "Dataset") or 0, arguments)
            print(f"seeded annotations in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            version = (await _graphql(client, key, CREATE_VERSION, id=ids[0]))["version"]["id"]
            print(f"createVersion in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await Tortoise.close_connections()
    return {
        "key": key,
        "version": version,
        "version_pk": decode_global_id(version, "Version"),
        "target": ids[-1],
        "database_url": settings.database_url,
        "data_dir": str(data_dir),
    }


# --- Children: one measured operation each ------------------------------------------------


@contextlib.asynccontextmanager
async def served(world: dict[str, Any]) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port of this process (the client reads the
    response from a socket, as a real one would: httpx's ASGI transport would buffer it)."""
    import uvicorn
    from tortoise import Tortoise

    from quiver import db
    from quiver.app import create_app
    from quiver.config import Settings

    settings = Settings(
        data_dir=Path(world["data_dir"]),
        database_url=world["database_url"],
        migrate_on_start=False,
    )
    config = db.tortoise_config(settings.database_url)
    await Tortoise.init(config=config, _enable_global_fallback=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings, manage_database=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        # uvicorn only sets a flag once it listens: nothing to wait on but the flag itself.
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await Tortoise.close_connections()


async def child_export(world: dict[str, Any], out: Path) -> dict[str, Any]:
    import httpx

    async with served(world) as base, httpx.AsyncClient(base_url=base, timeout=None) as client:
        headers = {"Authorization": f"Bearer {world['key']}"}
        await client.get("/healthz")
        before = rss_mb("VmRSS")
        reset_peak_rss()
        started = time.perf_counter()
        url = f"/versions/{world['version']}/annotations"
        async with client.stream("GET", url, params={"format": "coco"}, headers=headers) as got:
            assert got.status_code == 200, await got.aread()
            with out.open("wb") as output:
                async for chunk in got.aiter_raw():
                    output.write(chunk)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "before": before, "peak": rss_mb("VmHWM")}


def _coco_document(images: list[Any], labels: list[Any], annotations: list[Any]) -> dict[str, Any]:
    categories = [
        {"id": i, "name": name, "supercategory": ""} for i, (_, name) in enumerate(labels, 1)
    ]
    category_of = {label_id: i for i, (label_id, _) in enumerate(labels, 1)}
    image_of = {sample_id: i for i, (sample_id, *_rest) in enumerate(images, 1)}
    document: dict[str, Any] = {
        "info": {"description": "baseline"},
        "licenses": [],
        "categories": categories,
        "images": [
            {"id": i, "file_name": path, "width": w, "height": h}
            for i, (_, path, w, h) in enumerate(images, 1)
        ],
        "annotations": [],
    }
    for i, (sample_id, label_id, geometry) in enumerate(annotations, 1):
        box = json.loads(geometry) if isinstance(geometry, str) else geometry
        document["annotations"].append(
            {
                "id": i,
                "image_id": image_of[sample_id],
                "category_id": category_of[label_id],
                "iscrowd": 0,
                "bbox": [box["x"], box["y"], box["width"], box["height"]],
                "area": box["width"] * box["height"],
            }
        )
    return document


SAMPLES_SQL = (
    "SELECT sample_id, path, width, height FROM quiver_version_sample WHERE version_id = {} "
    "ORDER BY sample_id"
)
LABELS_SQL = (
    "SELECT label_id, name FROM quiver_version_label WHERE version_id = {} ORDER BY label_id"
)
ANNOTATIONS_SQL = (
    "SELECT sample_id, label_id, geometry FROM quiver_version_annotation WHERE version_id = {} "
    "ORDER BY sample_id, annotation_id"
)


async def child_baseline(world: dict[str, Any], out: Path) -> dict[str, Any]:
    version = int(world["version_pk"])
    url: str = world["database_url"]
    before = rss_mb("VmRSS")
    reset_peak_rss()
    started = time.perf_counter()
    if url.startswith("sqlite://"):
        connection = sqlite3.connect(url.removeprefix("sqlite://"))
        images = connection.execute(SAMPLES_SQL.format(version)).fetchall()
        labels = connection.execute(LABELS_SQL.format(version)).fetchall()
        annotations = connection.execute(ANNOTATIONS_SQL.format(version)).fetchall()
        connection.close()
    else:
        postgres = await asyncpg.connect(url)
        images = [tuple(r) for r in await postgres.fetch(SAMPLES_SQL.format(version))]
        labels = [tuple(r) for r in await postgres.fetch(LABELS_SQL.format(version))]
        annotations = [tuple(r) for r in await postgres.fetch(ANNOTATIONS_SQL.format(version))]
        await postgres.close()
    document = _coco_document(images, labels, annotations)
    with out.open("w") as output:
        json.dump(document, output)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "before": before, "peak": rss_mb("VmHWM")}


async def child_import(world: dict[str, Any], source: Path) -> dict[str, Any]:
    import httpx

    async with served(world) as base, httpx.AsyncClient(base_url=base, timeout=None) as client:
        await client.get("/healthz")
        variables = {"datasetId": world["target"], "format": "COCO", "file": None}
        operations = json.dumps({"query": IMPORT, "variables": {"input": variables}})
        before = rss_mb("VmRSS")
        reset_peak_rss()
        started = time.perf_counter()
        with source.open("rb") as upload:
            response = await client.post(
                "/graphql",
                data={"operations": operations, "map": json.dumps({"0": ["variables.input.file"]})},
                files={"0": ("coco.json", upload, "application/json")},
                headers={"Authorization": f"Bearer {world['key']}"},
            )
        seconds = time.perf_counter() - started
        payload = response.json()["data"]["importAnnotations"]
        assert payload["userErrors"] == [], payload["userErrors"]
    return {
        "seconds": seconds,
        "before": before,
        "peak": rss_mb("VmHWM"),
        "annotations": payload["annotationCount"],
    }


async def child_parse(world: dict[str, Any], source: Path) -> dict[str, Any]:
    before = rss_mb("VmRSS")
    reset_peak_rss()
    started = time.perf_counter()
    with source.open() as opened:
        document = json.load(opened)
    seconds = time.perf_counter() - started
    assert document["annotations"]
    return {"seconds": seconds, "before": before, "peak": rss_mb("VmHWM")}


CHILDREN = {
    "export": child_export,
    "baseline": child_baseline,
    "import": child_import,
    "parse": child_parse,
}


def run_child(kind: str, world: dict[str, Any], path: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--world",
            json.dumps(world),
            "--path",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _line(name: str, result: dict[str, Any], baseline: dict[str, Any]) -> str:
    growth = result["peak"] - result["before"]
    base_growth = baseline["peak"] - baseline["before"]
    return (
        f"{name:<34}{result['seconds']:8.2f} s {result['seconds'] / baseline['seconds']:6.2f}x"
        f"{result['peak']:8.0f} MB {result['peak'] / baseline['peak']:6.2f}x"
        f"{growth:8.0f} MB {growth / base_growth if base_growth > 0 else float('nan'):6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--per-sample", type=int, default=5)
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data dir")
    parser.add_argument("--dir", default=None, help="where the temporary data dir goes")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help="export/baseline pairs (fastest)")
    parser.add_argument("--skip-import", action="store_true", help="measure the export only")
    arguments = parser.parse_args()
    if arguments.child:
        result = asyncio.run(
            CHILDREN[arguments.child](json.loads(arguments.world), Path(arguments.path))
        )
        print(json.dumps(result))
        return
    root = Path(tempfile.mkdtemp(dir=arguments.dir, prefix="quiver-bench-"))
    try:
        world = asyncio.run(seed(arguments, root / "data"))
        exported, plain = root / "quiver.json", root / "baseline.json"
        pairs = [
            (run_child("export", world, exported), run_child("baseline", world, plain))
            for _ in range(max(arguments.rounds, 1))
        ]
        quiver = min((pair[0] for pair in pairs), key=lambda run: float(run["seconds"]))
        baseline = min((pair[1] for pair in pairs), key=lambda run: float(run["seconds"]))
        for ours_run, theirs_run in pairs:
            print(f"export {ours_run['seconds']:.2f} s, baseline {theirs_run['seconds']:.2f} s")
        ours, theirs = json.loads(exported.read_bytes()), json.loads(plain.read_bytes())
        assert len(ours["annotations"]) == len(theirs["annotations"])
        assert len(ours["images"]) == len(theirs["images"])
        imported = parsed = None
        if not arguments.skip_import:
            imported = run_child("import", world, exported)
            parsed = run_child("parse", world, exported)
    finally:
        shutil.rmtree(root)
    engine = "PostgreSQL" if (arguments.database_url or "").startswith("postgres") else "SQLite"
    count = arguments.samples * arguments.per_sample
    print(f"\n{engine}: {arguments.samples} samples, {count} boxes, {arguments.labels} labels")
    print(
        f"{'':<34}{'time':>10} {'ratio':>6}{'peak RSS':>11} {'ratio':>6}{'growth':>11} {'ratio':>6}"
    )
    print(_line("baseline: dict + json.dump", baseline, baseline))
    print(
        _line("Quiver COCO export (streamed)", quiver, baseline)
        + "   target <= 1.5x time, <= 0.25x RSS"
    )
    if imported is None or parsed is None:
        return
    print(_line("baseline: json.load of the file", parsed, parsed))
    print(_line("Quiver COCO import", imported, parsed))
    rate = imported["annotations"] / imported["seconds"]
    print(f"import: {imported['annotations']} annotations, {rate:.0f} a second")


if __name__ == "__main__":
    main()
