"""Time annotating, searching, counting and versioning a large labelled image dataset.

Seeds one dataset of --samples image files (all pointing at one real PNG blob, so that the
seed costs rows, not bytes) through ``put_files``, 20 BOUNDING_BOX labels, then through
GraphQL over HTTP (httpx on the ASGI app):

- ``addSamples(allFiles: true)``: a sample of every file, its size read from the header
- ``annotateSamples`` in batches of 1,000 samples, --boxes boxes each (500,000 by default):
  annotations written per second; and the same writes for --direct samples through the
  resolver API importers call (``replace_annotations``), without GraphQL
- a filtered page of 100 samples (labels ALL of two, status LABELED) with their annotations,
  labels and files: median time of --runs and the SQL statements it sent
- ``Dataset.statistics`` (per-label sample and annotation counts): median time
- ``createVersion`` (files, labels, samples, annotations): median of --runs, against a named
  baseline measured just before each run: the raw driver (sqlite3 or asyncpg) running the
  same four ``INSERT … SELECT`` statements (version entries without tags, labels, samples
  joined to their files' paths, annotations) into a scratch version, committed

COCO export and import figures come from ``bench/annotations.py`` (same 100,000 samples and
500,000 boxes; each measured operation in its own process, so that peak RSS is its own).

    python bench/labels.py [--samples 100000] [--boxes 5] [--runs 3]
        [--database-url postgres://postgres@127.0.0.1:5432/db] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
from PIL import Image
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from quiver import db
from quiver.app import create_app
from quiver.auth import ensure_admin_key
from quiver.config import Settings
from quiver.ids import decode_global_id, encode_global_id
from quiver.models import Sample
from quiver.resolvers import sql
from quiver.resolvers.annotations import AnnotationSpec, SampleAnnotations, replace_annotations
from quiver.resolvers.blobs import store_blob
from quiver.resolvers.files import FileWrite, put_files
from quiver.resolvers.label_metrics import record_counts
from quiver.storage import storage_from_url

BATCH = 1000
LABELS = 20
CREATE_DATASET = """mutation($name: String!) { createDataset(input: {name: $name, type: IMAGE}) {
  dataset { id } userErrors { message } } }"""
CREATE_LABELS = """mutation($id: ID!, $labels: [LabelInput!]!) {
  createLabels(input: {datasetId: $id, labels: $labels}) { labels { id name }
  userErrors { message } } }"""
ADD_ALL = """mutation($id: ID!) { addSamples(input: {datasetId: $id, allFiles: true}) {
  count userErrors { message } } }"""
ANNOTATE = """mutation($samples: [SampleAnnotationsInput!]!) {
  annotateSamples(input: {samples: $samples}) { samples { id } userErrors { message } } }"""
PAGE = """query($id: ID!, $labels: [ID!]!) { dataset(id: $id) { samples(first: 100,
  filter: {labelIds: $labels, labelMatch: ALL, status: LABELED}) { edges { node { id path
  width file { path sha256 } annotations { geometry label { name } } } } } } }"""
STATISTICS = """query($id: ID!) { dataset(id: $id) { statistics { sampleCount labeledCount
  annotationCount labels { label { name } count annotationCount } } } }"""
CREATE_VERSION = """mutation($id: ID!) { createVersion(input: {datasetId: $id, allowEmpty: true})
  { version { id fileCount } userErrors { message } } }"""

BASELINE_VERSION = (
    "INSERT INTO quiver_version (dataset_id, number, name, created_at, file_count, total_size) "
    "VALUES ({0}, 1000000, 'baseline', {1}, 0, 0)"
)
BASELINE = [
    "INSERT INTO quiver_version_entry (version_id, path, blob_id, size, content_type, metadata, "
    "tags, created_at, updated_at) SELECT {v}, path, blob_id, size, content_type, metadata, "
    "'[]', created_at, updated_at FROM quiver_dataset_file WHERE dataset_id = {d}",
    "INSERT INTO quiver_version_label (version_id, label_id, name, color, kind, attributes, "
    "parent_id, skeleton, created_at, updated_at) SELECT {v}, id, name, color, kind, attributes, "
    "parent_id, skeleton, created_at, updated_at FROM quiver_label WHERE dataset_id = {d}",
    "INSERT INTO quiver_version_sample (version_id, sample_id, path, row, status, hard_example, "
    "metadata, width, height, revision, created_at, updated_at) SELECT {v}, s.id, f.path, s.row, "
    "s.status, s.hard_example, s.metadata, s.width, s.height, s.revision, s.created_at, "
    "s.updated_at FROM quiver_sample s JOIN quiver_dataset_file f ON f.id = s.file_id "
    "WHERE s.dataset_id = {d}",
    "INSERT INTO quiver_version_annotation (version_id, annotation_id, sample_id, label_id, "
    "score, geometry, attributes, source, model_name, model_version, job_id, created_by_id, "
    "revision, created_at, updated_at) SELECT {v}, id, sample_id, label_id, score, geometry, "
    "attributes, source, model_name, model_version, job_id, created_by_id, revision, "
    "created_at, updated_at FROM quiver_annotation WHERE dataset_id = {d}",
]


class StatementCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class Api:
    client: httpx.AsyncClient
    key: str

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=600,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])

    async def mutate(self, query: str, **variables: Any) -> dict[str, Any]:
        (payload,) = (await self.data(query, **variables)).values()
        assert payload["userErrors"] == [], payload["userErrors"]
        return dict(payload)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def baseline_seconds(database_url: str, dataset_pk: int) -> float:
    """The raw driver's four INSERT … SELECT into a scratch version, committed."""
    if not database_url.startswith("sqlite://"):
        postgres = await asyncpg.connect(database_url)
        try:
            statement = BASELINE_VERSION.format(dataset_pk, "now()") + " RETURNING id"
            version_pk = await postgres.fetchval(statement)
            started = time.perf_counter()
            async with postgres.transaction():
                for sql in BASELINE:
                    await postgres.execute(sql.format(v=version_pk, d=dataset_pk))
            seconds = time.perf_counter() - started
            await postgres.execute("DELETE FROM quiver_version WHERE id = $1", version_pk)
        finally:
            await postgres.close()
        return seconds
    connection = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        now = datetime.now(UTC).isoformat()
        version_pk = connection.execute(BASELINE_VERSION.format(dataset_pk, "?"), [now]).lastrowid
        started = time.perf_counter()
        connection.execute("BEGIN")
        for sql in BASELINE:
            connection.execute(sql.format(v=version_pk, d=dataset_pk))
        connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        connection.execute("DELETE FROM quiver_version WHERE id = ?", [version_pk])
    finally:
        connection.close()
    return seconds


async def bench(api: Api, settings: Settings, arguments: argparse.Namespace) -> list[str]:
    rng = random.Random(0)
    lines: list[str] = []
    n, boxes = arguments.samples, arguments.boxes
    dataset = (await api.mutate(CREATE_DATASET, name="bench-labels"))["dataset"]["id"]
    dataset_pk = decode_global_id(dataset) or 0
    storage = storage_from_url(settings.storage_url)
    image = png_bytes()
    blob = await store_blob(storage, one_chunk(image))
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        writes = [
            FileWrite(f"images/{i // 1000:03d}/{i:07d}.png", blob, "image/png", None, ())
            for i in range(start, min(n, start + BATCH))
        ]
        await put_files(dataset_pk, writes)
    print(f"seeded {n} files in {time.perf_counter() - started:.0f} s", flush=True)
    labels = (
        await api.mutate(
            CREATE_LABELS,
            id=dataset,
            labels=[{"name": f"class-{i:02d}", "kind": "BOUNDING_BOX"} for i in range(LABELS)],
        )
    )["labels"]
    label_ids = [label["id"] for label in labels]
    label_pks = [decode_global_id(label_id) or 0 for label_id in label_ids]

    started = time.perf_counter()
    added = (await api.mutate(ADD_ALL, id=dataset))["count"]
    seconds = time.perf_counter() - started
    assert added == n, added
    lines.append(f"addSamples(allFiles) of {n} images: {seconds:.2f} s ({n / seconds:,.0f}/s)")

    rows = await Sample.filter(dataset_id=dataset_pk).order_by("id").values("id")
    sample_pks = [int(row["id"]) for row in rows]
    total = 0
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        batch = []
        for pk in sample_pks[start : start + BATCH]:
            annotations = []
            for _ in range(boxes):
                x, y = rng.randint(0, 600), rng.randint(0, 440)
                annotations.append(
                    {
                        "labelId": label_ids[rng.randrange(LABELS)],
                        "geometry": {
                            "x": x,
                            "y": y,
                            "width": rng.randint(1, 40),
                            "height": rng.randint(1, 40),
                        },
                    }
                )
            batch.append({"sampleId": encode_global_id("Sample", pk), "annotations": annotations})
        await api.mutate(ANNOTATE, samples=batch)
        total += len(batch) * boxes
        if (start // BATCH) % 20 == 0:
            print(f"  {total} annotations, {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    lines.append(
        f"annotateSamples, {total} boxes in batches of {BATCH} samples: {seconds:.1f} s, "
        f"{total / seconds:,.0f} annotations/s"
    )

    # The same writes without GraphQL: what an importer calling the resolver API gets.
    direct = min(n, arguments.direct)
    specs = [
        SampleAnnotations(
            pk,
            [
                AnnotationSpec(
                    label_pks[rng.randrange(LABELS)],
                    {"x": 1, "y": 1, "width": rng.randint(1, 40), "height": 10},
                )
                for _ in range(boxes)
            ],
        )
        for pk in sample_pks[:direct]
    ]
    started = time.perf_counter()
    for start in range(0, direct, BATCH):
        async with in_transaction():
            await sql.lock_dataset(dataset_pk)
            await replace_annotations(
                dataset_pk, specs[start : start + BATCH], user_id=None, reload=False
            )
            await record_counts(dataset_pk)
    seconds = time.perf_counter() - started
    lines.append(
        f"replace_annotations (resolver API, no GraphQL), {direct * boxes} boxes in batches of "
        f"{BATCH}: {direct * boxes / seconds:,.0f} annotations/s"
    )

    counter = StatementCounter()
    logger = logging.getLogger("tortoise.db_client")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    times, counts = [], []
    for _ in range(arguments.runs):
        counter.count = 0
        started = time.perf_counter()
        page = (await api.data(PAGE, id=dataset, labels=label_ids[:2]))["dataset"]["samples"]
        times.append(time.perf_counter() - started)
        counts.append(counter.count)
    assert page["edges"], "the filter found nothing"
    logger.removeHandler(counter)
    lines.append(
        f"filtered page of {len(page['edges'])} (labels ALL of two, status LABELED) with "
        f"annotations, labels, files: {statistics.median(times) * 1000:.0f} ms median, "
        f"{counts[-1]} SQL statements"
    )
    times = []
    for _ in range(arguments.runs):
        started = time.perf_counter()
        found = (await api.data(STATISTICS, id=dataset))["dataset"]["statistics"]
        times.append(time.perf_counter() - started)
    assert found["annotationCount"] == total, found
    lines.append(
        f"Dataset.statistics ({LABELS} labels): {statistics.median(times) * 1000:.0f} ms median"
    )

    versions, baselines = [], []
    for _ in range(arguments.runs):
        baselines.append(await baseline_seconds(settings.database_url, dataset_pk))
        started = time.perf_counter()
        version = (await api.mutate(CREATE_VERSION, id=dataset))["version"]
        versions.append(time.perf_counter() - started)
        assert version["fileCount"] == n
    version_s, baseline_s = statistics.median(versions), statistics.median(baselines)
    lines.append(
        f"createVersion ({n} files, {n} samples, {total} annotations): {version_s:.2f} s median; "
        f"baseline raw INSERT…SELECT of the same rows {baseline_s:.2f} s: "
        f"{version_s / baseline_s:.2f}x (target ≤ 1.5x)"
    )
    return lines


async def run(arguments: argparse.Namespace, data_dir: Path) -> None:
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
        async with httpx.AsyncClient(transport=transport, base_url="http://quiver") as client:
            lines = await bench(Api(client, key), settings, arguments)
    finally:
        await Tortoise.close_connections()
    engine = "PostgreSQL" if settings.database_url.startswith("postgres") else "SQLite"
    print(f"\n{engine}:")
    for line in lines:
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000, help="image samples")
    parser.add_argument("--boxes", type=int, default=5, help="boxes per sample")
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed query (median)")
    parser.add_argument(
        "--direct", type=int, default=20_000, help="samples re-annotated through the resolver"
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data dir")
    parser.add_argument("--dir", default=None, help="where the temporary data dir goes")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=arguments.dir, prefix="quiver-bench-labels-"))
    try:
        anyio.run(run, arguments, root / "data", backend="asyncio")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
