"""The asynchronous client: ``AsyncClient(url=None, api_key=None)``, the same operations as
``Client`` as coroutines and async iterators. Folder transfers (push, pull, large uploads) run
the sync implementation in a worker thread, so they never block the event loop."""

from __future__ import annotations

import functools
import io
import json
import mimetypes
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx

from quiver.client import operations as ops
from quiver.client.client import EXPORT_FORMATS, SMALL_UPLOAD, Client
from quiver.client.errors import QuiverError, TransportError
from quiver.client.references import Reference, parse_reference
from quiver.client.settings import resolve
from quiver.client.transport import (
    MAX_RETRIES,
    RETRY_STATUSES,
    body,
    dataset_id_in,
    headers,
    interpret,
    is_ours,
    raise_for_status,
    retry_delay,
)
from quiver.client.types import (
    Dataset,
    File,
    Json,
    LineageGraph,
    Page,
    QualityReport,
    Table,
    TableStatistics,
    Version,
    VersionDiff,
)

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from quiver.client.pull import PullReport
    from quiver.client.push import PushReport

T = TypeVar("T")


class AsyncClient:
    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout: float = 120.0
    ) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers(self.api_key),
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        self._dataset_ids: dict[Reference, str] = {}

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == MAX_RETRIES:
                    raise TransportError(f"{self.url} could not be reached: {exc}") from exc
                await anyio.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                return response
            await anyio.sleep(retry_delay(response, attempt))
        raise AssertionError("unreachable")

    async def execute(self, operation: ops.Operation[T]) -> T:
        response = await self.request("POST", "/graphql", json=body(operation))
        return interpret(response, operation)

    async def graphql(self, query: str, variables: Json | None = None) -> Json:
        return await self.execute(ops.Operation(query, variables or {}, lambda data: data))

    async def _pages(
        self, page: Callable[[str | None], ops.Operation[Page[T]]]
    ) -> AsyncIterator[T]:
        after: str | None = None
        while True:
            found = await self.execute(page(after))
            for item in found.items:
                yield item
            if not found.has_next_page:
                return
            after = found.end_cursor

    async def _in_thread(self, work: Callable[[Client], T]) -> T:
        """Run sync client code (folder transfers) in a worker thread."""

        def run() -> T:
            with Client(self.url, self.api_key, timeout=self.timeout) as client:
                return work(client)

        return await anyio.to_thread.run_sync(run)

    # --- datasets -------------------------------------------------------------------------

    def datasets(self, **filters: Any) -> AsyncIterator[Dataset]:
        """As ``Client.datasets`` (type, tags, keyword, status, project, visibility, …)."""
        order = {
            "field": filters.pop("order_by", "CREATED_AT"),
            "direction": "DESC" if filters.pop("descending", True) else "ASC",
        }
        given = {"includeDeleted": filters.pop("include_deleted", False)}
        given |= {key: value for key, value in filters.items() if value is not None}
        return self._pages(lambda after: ops.datasets(after, given, order))

    async def dataset(self, reference: str) -> Dataset:
        if dataset_id_in(reference):
            return await self.execute(ops.dataset(id=reference))
        parsed = parse_reference(reference)
        team_id = await self._team_id(parsed.team) if parsed.team else None
        found = await self.execute(ops.dataset(name=parsed.dataset, team=team_id))
        self._dataset_ids[Reference(parsed.dataset, parsed.team)] = found.id
        return found

    async def dataset_id(self, reference: str) -> str:
        if dataset_id_in(reference):
            return reference
        parsed = parse_reference(reference)
        key = Reference(parsed.dataset, parsed.team)
        if key not in self._dataset_ids:
            await self.dataset(str(key))
        return self._dataset_ids[key]

    async def _team_id(self, name: str) -> str:
        teams = await self.execute(ops.viewer_teams())
        if name not in teams:
            raise QuiverError(f"You are in no team named {name!r}", code="NOT_FOUND")
        return teams[name]

    async def create_dataset(self, name: str, *, team: str | None = None, **fields: Any) -> Dataset:
        """``fields``: description, type, tags, visibility, licence, project."""
        values: Json = {"name": name, **fields}
        if team:
            values["teamId"] = await self._team_id(team)
        return await self.execute(ops.create_dataset(values))

    async def update_dataset(self, reference: str, **changes: Any) -> Dataset:
        dataset_id = await self.dataset_id(reference)
        return await self.execute(ops.update_dataset({"id": dataset_id, **changes}))

    async def delete_dataset(self, reference: str, *, hard: bool = False) -> None:
        await self.execute(ops.delete_dataset(await self.dataset_id(reference), hard))
        self._dataset_ids.clear()

    async def reinstate_dataset(self, dataset_id: str) -> Dataset:
        return await self.execute(ops.reinstate_dataset(dataset_id))

    async def clear_dataset(self, reference: str) -> Dataset:
        return await self.execute(ops.clear_dataset(await self.dataset_id(reference)))

    async def copy_dataset(
        self, reference: str, new_name: str | None = None, *, only_paths: list[str] | None = None
    ) -> Dataset:
        source = await self._source_id(reference)
        values = {"id": source, "newName": new_name, "onlyPaths": only_paths}
        return await self.execute(ops.copy_dataset(values))

    async def merge_datasets(self, target: str, source: str, **options: Any) -> Dataset:
        """``options``: onConflict, deleteSource, hard (GraphQL names)."""
        values: Json = {"targetId": await self.dataset_id(target)}
        values |= {"sourceId": await self.dataset_id(source), **options}
        return await self.execute(ops.merge_datasets(values))

    async def share_dataset(self, reference: str, **grant: Any) -> Dataset:
        """``grant``: userId or teamId, and role (None revokes)."""
        values = {"datasetId": await self.dataset_id(reference), **grant}
        return await self.execute(ops.share_dataset(values))

    # --- versions -------------------------------------------------------------------------

    async def versions(self, reference: str) -> AsyncIterator[Version]:
        dataset_id = await self.dataset_id(reference)
        async for version in self._pages(lambda after: ops.versions(dataset_id, after)):
            yield version

    async def version(self, reference: str, number: int | None = None) -> Version:
        parsed = parse_reference(reference) if not dataset_id_in(reference) else None
        wanted = number or (parsed.version if parsed else None)
        async for version in self.versions(reference):
            if wanted is None or version.number == wanted:
                return version
        what = f"v{wanted}" if wanted else "any version"
        raise QuiverError(f"{reference} has no {what}", code="NOT_FOUND")

    async def create_version(
        self, reference: str, description: str | None = None, *, allow_empty: bool = False
    ) -> Version:
        dataset_id = await self.dataset_id(reference)
        return await self.execute(ops.create_version(dataset_id, description, allow_empty))

    async def diff(self, reference: str, old: int, new: int) -> VersionDiff:
        newer, older = await self.version(reference, new), await self.version(reference, old)
        return await self.execute(ops.diff(newer.id, older.id))

    async def restore_version(self, reference: str, number: int) -> Dataset:
        version = await self.version(reference, number)
        return await self.execute(ops.restore_version(version.id))

    async def _source_id(self, reference: str) -> str:
        if not dataset_id_in(reference) and parse_reference(reference).version is not None:
            return (await self.version(reference)).id
        return await self.dataset_id(reference)

    async def _version_id_of(self, reference: str) -> str | None:
        if dataset_id_in(reference) or parse_reference(reference).version is None:
            return None
        return (await self.version(reference)).id

    # --- files ----------------------------------------------------------------------------

    async def files(self, reference: str, *, prefix: str | None = None) -> AsyncIterator[File]:
        version = await self._version_id_of(reference)
        if version is not None:
            pages = self._pages(lambda after: ops.version_files(version, after, prefix))
        else:
            dataset_id = await self.dataset_id(reference)
            pages = self._pages(lambda after: ops.files(dataset_id, after, prefix))
        async for found in pages:
            yield found

    async def file(self, reference: str, path: str) -> File:
        version = await self._version_id_of(reference)
        dataset_id = await self.dataset_id(reference)
        found = await self.execute(ops.file(dataset_id, path, version_id=version))
        if found is None:
            raise QuiverError(f"{reference} has no file {path!r}", code="NOT_FOUND")
        return found

    async def upload_file(
        self,
        reference: str,
        path: str,
        source: str | Path | bytes,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        content_type: str | None = None,
    ) -> File:
        if isinstance(source, bytes):
            size = len(source)
        else:
            size = (await anyio.Path(source).stat()).st_size
        if not isinstance(source, bytes) and size > SMALL_UPLOAD:
            upload = functools.partial(
                Client.upload_file, metadata=metadata, tags=tags, content_type=content_type
            )
            return await self._in_thread(lambda c: upload(c, reference, path, source))
        data = source if isinstance(source, bytes) else await anyio.Path(source).read_bytes()
        values: Json = {"datasetId": await self.dataset_id(reference), "path": path}
        values |= {"file": None, "metadata": metadata, "tags": tags, "contentType": content_type}
        operations = {"query": ops.UPLOAD_FILE, "variables": {"input": values}}
        guessed = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        response = await self.request(
            "POST",
            "/graphql",
            data={"operations": json.dumps(operations), "map": '{"0": ["variables.input.file"]}'},
            files={"0": (Path(path).name or "file", data, guessed)},
            headers={"GraphQL-Require-Preflight": "1"},
        )
        return interpret(response, ops.Operation("", {}, ops.parse_upload))

    async def read_bytes(
        self, reference: str, path: str, *, start: int = 0, end: int | None = None
    ) -> bytes:
        url = (await self.file(reference, path)).download_url
        assert url is not None
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if not is_ours(self.url, url):
            # A presigned bucket URL: fetched without our Authorization header.
            async with httpx.AsyncClient(timeout=self.timeout) as bare:
                response = await bare.get(url, headers=extra, follow_redirects=True)
        else:
            response = await self.request("GET", url, headers=extra, follow_redirects=True)
        if response.status_code == 416:
            return b""
        raise_for_status(response)
        return response.content

    async def move_file(
        self, reference: str, path: str, new_path: str, *, overwrite: bool = False
    ) -> File:
        values: Json = {"datasetId": await self.dataset_id(reference), "path": path}
        values |= {"newPath": new_path, "overwrite": overwrite}
        return await self.execute(ops.move_file(values))

    async def set_file_metadata(
        self,
        reference: str,
        path: str,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        merge: bool = False,
    ) -> File:
        values: Json = {"datasetId": await self.dataset_id(reference), "path": path}
        values |= {"metadata": metadata, "tags": tags, "merge": merge}
        return await self.execute(ops.set_file_metadata(values))

    async def delete_files(self, reference: str, paths: list[str]) -> list[str]:
        return await self.execute(ops.delete_files(await self.dataset_id(reference), paths))

    # --- tables ---------------------------------------------------------------------------

    async def table(self, reference: str, path: str | None = None) -> Table:
        return await self.execute(ops.table((await self.version(reference)).id, path))

    async def preview(
        self, reference: str, path: str | None = None, *, limit: int = 20
    ) -> list[Json]:
        return await self.execute(ops.preview((await self.version(reference)).id, path, limit))

    async def statistics(
        self, reference: str, path: str | None = None, *, bins: int = 10, top_k: int = 10
    ) -> TableStatistics:
        version = await self.version(reference)
        return await self.execute(ops.statistics(version.id, path, bins, top_k))

    async def quality(self, reference: str, path: str | None = None) -> QualityReport:
        return await self.execute(ops.quality((await self.version(reference)).id, path))

    async def compare(self, reference: str, baseline: int, path: str | None = None) -> Json:
        base = await self.version(reference, baseline)
        return await self.execute(ops.compare((await self.version(reference)).id, path, base.id))

    async def export_bytes(
        self, reference: str, *, format: str = "parquet", path: str | None = None
    ) -> bytes:
        """A version's table as CSV, XLSX or Parquet bytes."""
        if format not in EXPORT_FORMATS:
            raise QuiverError(f"format must be one of {', '.join(EXPORT_FORMATS)}", code="INVALID")
        version = await self.version(reference)
        params = {"format": format} | ({"path": path} if path else {})
        response = await self.request("GET", f"/versions/{version.id}/export", params=params)
        raise_for_status(response)
        return response.content

    async def to_arrow(self, reference: str, path: str | None = None) -> pyarrow.Table:
        import pyarrow.parquet as pq

        data = await self.export_bytes(reference, path=path)
        return await anyio.to_thread.run_sync(lambda: pq.read_table(io.BytesIO(data)))

    async def to_pandas(self, reference: str, path: str | None = None) -> pandas.DataFrame:
        table = await self.to_arrow(reference, path)
        return await anyio.to_thread.run_sync(table.to_pandas)

    # --- lineage and folders ----------------------------------------------------------------

    async def lineage(
        self, reference: str, *, direction: str = "BOTH", depth: int = 3
    ) -> LineageGraph:
        return await self.execute(ops.lineage(await self._source_id(reference), direction, depth))

    async def push(self, directory: str | Path, reference: str, **options: Any) -> PushReport:
        return await self._in_thread(lambda c: c.push(directory, reference, **options))

    async def pull(self, reference: str, directory: str | Path, **options: Any) -> PullReport:
        return await self._in_thread(lambda c: c.pull(reference, directory, **options))
