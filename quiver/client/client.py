"""The synchronous client: ``Client(url=None, api_key=None)``."""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from quiver.client import operations as ops
from quiver.client import tus
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

    from quiver.client.jobs import Job
    from quiver.client.labels import Label, Sample
    from quiver.client.pull import PullReport
    from quiver.client.push import PushReport

T = TypeVar("T")
# Files up to this size go in one multipart request; larger ones through resumable tus.
SMALL_UPLOAD = 8 * 1024 * 1024
EXPORT_FORMATS = ("csv", "xlsx", "parquet")


class Client:
    """Quiver's API from Python. ``url`` and ``api_key`` default to QUIVER_URL and
    QUIVER_API_KEY, then to what ``quiver login`` saved."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout: float = 120.0
    ) -> None:
        settings = resolve(url, api_key)
        self.url = settings.url
        self.api_key = settings.api_key
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers(self.api_key),
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        # For presigned URLs elsewhere (the bucket): never with our Authorization header.
        self.plain_http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self._dataset_ids: dict[Reference, str] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.plain_http.close()

    def http_for(self, url: str) -> httpx.Client:
        """The client to fetch ``url`` with: ours for this server, a bare one elsewhere."""
        return self.http if is_ours(self.url, url) else self.plain_http

    # --- sending ------------------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request, retried on 429/5xx (honouring Retry-After) and lost connections."""
        http = self.http_for(url)
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt == MAX_RETRIES:
                    raise TransportError(f"{self.url} could not be reached: {exc}") from exc
                time.sleep(retry_delay(None, attempt))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                return response
            time.sleep(retry_delay(response, attempt))
        raise AssertionError("unreachable")

    def execute(self, operation: ops.Operation[T]) -> T:
        return interpret(self.request("POST", "/graphql", json=body(operation)), operation)

    def graphql(self, query: str, variables: Json | None = None) -> Json:
        """Any GraphQL operation; its ``data``, or QuiverError for its first error."""
        return self.execute(ops.Operation(query, variables or {}, lambda data: data))

    def _pages(self, page: Callable[[str | None], ops.Operation[Page[T]]]) -> Iterator[T]:
        after: str | None = None
        while True:
            found = self.execute(page(after))
            yield from found.items
            if not found.has_next_page:
                return
            after = found.end_cursor

    # --- datasets -----------------------------------------------------------------------

    def datasets(
        self,
        *,
        type: str | None = None,
        tags: list[str] | None = None,
        keyword: str | None = None,
        status: str | None = None,
        project: str | None = None,
        visibility: str | None = None,
        include_deleted: bool = False,
        order_by: str = "CREATED_AT",
        descending: bool = True,
    ) -> Iterator[Dataset]:
        """Every dataset the caller can read that passes the filters, a page at a time."""
        given = {"type": type, "tags": tags, "keyword": keyword, "status": status}
        given |= {"project": project, "visibility": visibility}
        filter: Json = {key: value for key, value in given.items() if value is not None}
        filter["includeDeleted"] = include_deleted
        order = {"field": order_by, "direction": "DESC" if descending else "ASC"}
        return self._pages(lambda after: ops.datasets(after, filter, order))

    def dataset(self, reference: str) -> Dataset:
        """A dataset by ID, by name in the caller's team, or ``team/name``."""
        if dataset_id_in(reference):
            return self.execute(ops.dataset(id=reference))
        parsed = parse_reference(reference)
        team_id = self._team_id(parsed.team) if parsed.team else None
        found = self.execute(ops.dataset(name=parsed.dataset, team=team_id))
        self._dataset_ids[Reference(parsed.dataset, parsed.team)] = found.id
        return found

    def dataset_id(self, reference: str) -> str:
        if dataset_id_in(reference):
            return reference
        parsed = parse_reference(reference)
        key = Reference(parsed.dataset, parsed.team)
        if key not in self._dataset_ids:
            self.dataset(str(key))
        return self._dataset_ids[key]

    def _team_id(self, name: str) -> str:
        teams = self.execute(ops.viewer_teams())
        if name not in teams:
            raise QuiverError(f"You are in no team named {name!r}", code="NOT_FOUND")
        return teams[name]

    def create_dataset(
        self,
        name: str,
        *,
        description: str | None = None,
        type: str = "OTHER",
        tags: list[str] | None = None,
        visibility: str = "PRIVATE",
        licence: str | None = None,
        project: str | None = None,
        team: str | None = None,
    ) -> Dataset:
        values: Json = {"name": name, "description": description, "type": type, "tags": tags}
        values |= {"visibility": visibility, "licence": licence, "project": project}
        values["teamId"] = self._team_id(team) if team else None
        return self.execute(ops.create_dataset(values))

    def update_dataset(self, reference: str, **changes: Any) -> Dataset:
        """Change only the given fields (name, description, type, tags, visibility, …)."""
        return self.execute(ops.update_dataset({"id": self.dataset_id(reference), **changes}))

    def delete_dataset(self, reference: str, *, hard: bool = False) -> None:
        self.execute(ops.delete_dataset(self.dataset_id(reference), hard))
        self._dataset_ids.clear()

    def reinstate_dataset(self, dataset_id: str) -> Dataset:
        return self.execute(ops.reinstate_dataset(dataset_id))

    def clear_dataset(self, reference: str) -> Dataset:
        return self.execute(ops.clear_dataset(self.dataset_id(reference)))

    def copy_dataset(
        self, reference: str, new_name: str | None = None, *, only_paths: list[str] | None = None
    ) -> Dataset:
        values = {"id": self._source_id(reference), "newName": new_name, "onlyPaths": only_paths}
        return self.execute(ops.copy_dataset(values))

    def merge_datasets(
        self,
        target: str,
        source: str,
        *,
        on_conflict: str = "FAIL",
        delete_source: bool = False,
        hard: bool = False,
    ) -> Dataset:
        values: Json = {"targetId": self.dataset_id(target), "sourceId": self.dataset_id(source)}
        values |= {"onConflict": on_conflict, "deleteSource": delete_source, "hard": hard}
        return self.execute(ops.merge_datasets(values))

    def share_dataset(
        self,
        reference: str,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        role: str | None = "READ",
    ) -> Dataset:
        values = {"datasetId": self.dataset_id(reference), "userId": user_id, "teamId": team_id}
        return self.execute(ops.share_dataset(values | {"role": role}))

    # --- versions -----------------------------------------------------------------------

    def versions(self, reference: str) -> Iterator[Version]:
        """The dataset's versions, newest first."""
        dataset_id = self.dataset_id(reference)
        return self._pages(lambda after: ops.versions(dataset_id, after))

    def version(self, reference: str, number: int | None = None) -> Version:
        """Version ``number`` (or the one ``reference`` names with @vN; else the latest)."""
        parsed = parse_reference(reference) if not dataset_id_in(reference) else None
        wanted = number or (parsed.version if parsed else None)
        for version in self.versions(reference):
            if wanted is None or version.number == wanted:
                return version
        what = f"v{wanted}" if wanted else "any version"
        raise QuiverError(f"{reference} has no {what}", code="NOT_FOUND")

    def create_version(
        self, reference: str, description: str | None = None, *, allow_empty: bool = False
    ) -> Version:
        return self.execute(
            ops.create_version(self.dataset_id(reference), description, allow_empty)
        )

    def diff(self, reference: str, old: int, new: int) -> VersionDiff:
        """What changed from version ``old`` to version ``new``."""
        return self.execute(
            ops.diff(self.version(reference, new).id, self.version(reference, old).id)
        )

    def restore_version(self, reference: str, number: int) -> Dataset:
        return self.execute(ops.restore_version(self.version(reference, number).id))

    def _source_id(self, reference: str) -> str:
        """A dataset's ID, or its version's when ``reference`` names one (``name@v2``)."""
        if not dataset_id_in(reference) and parse_reference(reference).version is not None:
            return self.version(reference).id
        return self.dataset_id(reference)

    # --- files --------------------------------------------------------------------------

    def files(self, reference: str, *, prefix: str | None = None) -> Iterator[File]:
        """The working set's files (or a version's, for ``name@vN``), by path."""
        version = self._version_id_of(reference)
        if version is not None:
            return self._pages(lambda after: ops.version_files(version, after, prefix))
        dataset_id = self.dataset_id(reference)
        return self._pages(lambda after: ops.files(dataset_id, after, prefix))

    def file(self, reference: str, path: str) -> File:
        """One file (with a signed download URL); NOT_FOUND when there is none."""
        version = self._version_id_of(reference)
        found = self.execute(ops.file(self.dataset_id(reference), path, version_id=version))
        if found is None:
            raise QuiverError(f"{reference} has no file {path!r}", code="NOT_FOUND")
        return found

    def _version_id_of(self, reference: str) -> str | None:
        found = self._version_of(reference)
        return found.id if found else None

    def _version_of(self, reference: str) -> Version | None:
        """The version ``reference`` names with @vN; None for the working set."""
        if dataset_id_in(reference) or parse_reference(reference).version is None:
            return None
        return self.version(reference)

    def upload_file(
        self,
        reference: str,
        path: str,
        source: str | Path | bytes,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        content_type: str | None = None,
    ) -> File:
        """Add or replace ``path`` with a local file's bytes (or ``bytes``): one request for
        small files, resumable tus for large ones."""
        dataset_id = self.dataset_id(reference)
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        if isinstance(source, bytes) or size <= SMALL_UPLOAD:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            return self._upload_small(dataset_id, path, data, metadata, tags, content_type)
        values = {"datasetId": dataset_id, "path": path}
        if content_type:
            values["contentType"] = content_type
        url = tus.create(self.request, length=size, metadata=tus.encode_metadata(values))
        tus.send(self.request, url, Path(source), start=0, length=size)
        if metadata is not None or tags is not None:
            return self.set_file_metadata(reference, path, metadata=metadata, tags=tags)
        return self.file(reference, path)

    def _upload_small(
        self,
        dataset_id: str,
        path: str,
        data: bytes,
        metadata: Json | None,
        tags: list[str] | None,
        content_type: str | None,
    ) -> File:
        values: Json = {"datasetId": dataset_id, "path": path, "file": None}
        values["metadata"] = metadata
        values |= {"tags": tags, "contentType": content_type}
        operations = {"query": ops.UPLOAD_FILE, "variables": {"input": values}}
        guessed = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        response = self.request(
            "POST",
            "/graphql",
            data={"operations": json.dumps(operations), "map": '{"0": ["variables.input.file"]}'},
            files={"0": (Path(path).name or "file", data, guessed)},
            headers={"GraphQL-Require-Preflight": "1"},
        )
        return interpret(response, ops.Operation("", {}, ops.parse_upload))

    def read_bytes(
        self, reference: str, path: str, *, start: int = 0, end: int | None = None
    ) -> bytes:
        """A file's bytes, or the range ``start`` to ``end`` (exclusive)."""
        url = self.file(reference, path).download_url
        assert url is not None
        return self.read_url(url, start=start, end=end)

    def read_url(self, url: str, *, start: int = 0, end: int | None = None) -> bytes:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        response = self.request("GET", url, headers=extra, follow_redirects=True)
        if response.status_code == 416:
            return b""
        raise_for_status(response)
        return response.content

    def download_file(self, reference: str, path: str, destination: str | Path) -> Path:
        """Save one file to ``destination`` (a file name, or a folder to put it in)."""
        target = Path(destination)
        if target.is_dir():
            target = target / Path(path).name
        found = self.file(reference, path)
        assert found.download_url is not None
        partial = target.with_name(target.name + ".incomplete")
        http = self.http_for(found.download_url)
        with http.stream("GET", found.download_url, follow_redirects=True) as response:
            raise_for_status(response)
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)
        partial.replace(target)
        return target

    def move_file(
        self, reference: str, path: str, new_path: str, *, overwrite: bool = False
    ) -> File:
        values = {"datasetId": self.dataset_id(reference), "path": path, "newPath": new_path}
        return self.execute(ops.move_file(values | {"overwrite": overwrite}))

    def set_file_metadata(
        self,
        reference: str,
        path: str,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        merge: bool = False,
    ) -> File:
        values: Json = {"datasetId": self.dataset_id(reference), "path": path}
        values["metadata"] = metadata
        return self.execute(ops.set_file_metadata(values | {"tags": tags, "merge": merge}))

    def delete_files(self, reference: str, paths: list[str]) -> list[str]:
        """Remove paths from the working set; the ones that were there."""
        return self.execute(ops.delete_files(self.dataset_id(reference), paths))

    # --- tables -------------------------------------------------------------------------

    def table(self, reference: str, path: str | None = None) -> Table:
        """The schema of a version's table (``name@vN``; default: the latest version)."""
        return self.execute(ops.table(self.version(reference).id, path))

    def preview(self, reference: str, path: str | None = None, *, limit: int = 20) -> list[Json]:
        return self.execute(ops.preview(self.version(reference).id, path, limit))

    def statistics(
        self, reference: str, path: str | None = None, *, bins: int = 10, top_k: int = 10
    ) -> TableStatistics:
        return self.execute(ops.statistics(self.version(reference).id, path, bins, top_k))

    def quality(self, reference: str, path: str | None = None) -> QualityReport:
        return self.execute(ops.quality(self.version(reference).id, path))

    def compare(self, reference: str, baseline: int, path: str | None = None) -> Json:
        """Schema changes and drift of the table against version ``baseline``'s."""
        baseline_id = self.version(reference, baseline).id
        return self.execute(ops.compare(self.version(reference).id, path, baseline_id))

    def export(
        self,
        reference: str,
        destination: str | Path,
        *,
        format: str = "parquet",
        path: str | None = None,
    ) -> Path:
        """Write a version's table as CSV, XLSX or Parquet."""
        if format not in EXPORT_FORMATS:
            raise QuiverError(f"format must be one of {', '.join(EXPORT_FORMATS)}", code="INVALID")
        version = self.version(reference)
        params = {"format": format} | ({"path": path} if path else {})
        target = Path(destination)
        with self.http.stream("GET", f"/versions/{version.id}/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_status(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)
        return target

    def to_arrow(self, reference: str, path: str | None = None) -> pyarrow.Table:
        """A version's table as a pyarrow Table (through its Parquet export)."""
        import io

        import pyarrow.parquet as pq

        version = self.version(reference)
        params = {"format": "parquet"} | ({"path": path} if path else {})
        response = self.request("GET", f"/versions/{version.id}/export", params=params)
        raise_for_status(response)
        return pq.read_table(io.BytesIO(response.content))

    def to_pandas(self, reference: str, path: str | None = None) -> pandas.DataFrame:
        return self.to_arrow(reference, path).to_pandas()

    # --- lineage ------------------------------------------------------------------------

    def lineage(self, reference: str, *, direction: str = "BOTH", depth: int = 3) -> LineageGraph:
        node = self._source_id(reference)
        return self.execute(ops.lineage(node, direction, depth))

    # --- labels and samples -------------------------------------------------------------

    def labels(self, reference: str) -> list[Label]:
        """The labels of a dataset (or of a version, ``name@vN``), by name."""
        from quiver.client import labels

        return self.execute(labels.labels(*self._label_owner(reference)))

    def create_labels(self, reference: str, labels: list[str | Json]) -> list[Label]:
        """Make labels, all or none: names, or LabelInput objects ({name, kind, color, …})."""
        from quiver.client import labels as label_ops

        values = [{"name": given} if isinstance(given, str) else given for given in labels]
        return self.execute(label_ops.create_labels(self.dataset_id(reference), values))

    def label_ids(self, reference: str, names: list[str]) -> list[str]:
        """The IDs of labels named ``names``; NOT_FOUND naming any there is not."""
        by_name = {label.name: label.id for label in self.labels(reference)}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise QuiverError(f"{reference} has no label {', '.join(missing)}", code="NOT_FOUND")
        return [by_name[name] for name in names]

    def samples(
        self,
        reference: str,
        *,
        labels: list[str] | None = None,
        label_match: str = "ANY",
        status: str | None = None,
        metadata: Json | None = None,
        prefix: str | None = None,
        hard_example: bool | None = None,
    ) -> Iterator[Sample]:
        """The samples of a dataset (or a version) matching every condition given, with their
        annotations; ``labels`` by name, matched ANY, ALL or NONE."""
        from quiver.client import labels as label_ops

        owner, owner_id = self._label_owner(reference)
        filter = label_ops.sample_filter(
            label_ids=self.label_ids(reference, labels) if labels is not None else None,
            label_match=label_match,
            status=status.upper() if status else None,
            metadata=metadata,
            prefix=prefix,
            hard_example=hard_example,
        )
        pages = self._pages(lambda after: label_ops.samples(owner, owner_id, after, filter))
        return (label_ops.Sample.from_json(found) for found in pages)

    def add_samples(
        self,
        reference: str,
        paths: list[str] | None = None,
        *,
        all_files: bool = False,
        metadata: Json | None = None,
    ) -> list[Sample]:
        """Make samples of files (``paths``, or every file without one); the ones made."""
        from quiver.client import labels as label_ops

        values: Json = {"datasetId": self.dataset_id(reference), "paths": paths}
        values |= {"allFiles": all_files, "metadata": metadata}
        payload = self.execute(label_ops.add_samples(values))
        return [label_ops.Sample.from_json(found) for found in payload.get("samples") or []]

    def update_samples(
        self,
        sample_ids: list[str],
        *,
        status: str | None = None,
        hard_example: bool | None = None,
        metadata: Json | None = None,
    ) -> list[Sample]:
        """Set the status, hard-example flag or metadata of samples."""
        from quiver.client import labels as label_ops

        values: Json = {"ids": sample_ids}
        if status is not None:
            values["status"] = status.upper()
        if hard_example is not None:
            values["hardExample"] = hard_example
        if metadata is not None:
            values["metadata"] = metadata
        payload = self.execute(label_ops.update_samples(values))
        return [label_ops.Sample.from_json(found) for found in payload.get("samples") or []]

    def annotate(self, reference: str, annotations: dict[str, list[Json]]) -> list[Sample]:
        """Replace the annotations of samples (by sample ID), all or none. Each annotation is
        an AnnotationInput ({labelId or label: name, geometry, score, attributes, model})."""
        from quiver.client import labels as label_ops

        by_name: dict[str, str] | None = None
        entries: list[Json] = []
        for sample_id, given in annotations.items():
            made = []
            for annotation in given:
                annotation = dict(annotation)
                if "label" in annotation:
                    if by_name is None:
                        by_name = {label.name: label.id for label in self.labels(reference)}
                    name = annotation.pop("label")
                    if name not in by_name:
                        raise QuiverError(f"{reference} has no label {name}", code="NOT_FOUND")
                    annotation["labelId"] = by_name[name]
                made.append(annotation)
            entries.append({"sampleId": sample_id, "annotations": made})
        payload = self.execute(label_ops.annotate_samples({"samples": entries}))
        return [label_ops.Sample.from_json(found) for found in payload.get("samples") or []]

    def _label_owner(self, reference: str) -> tuple[str, str]:
        """("version", its ID) for ``name@vN``, else ("dataset", its ID)."""
        version = self._version_id_of(reference)
        if version is not None:
            return "version", version
        return "dataset", self.dataset_id(reference)

    # --- jobs ---------------------------------------------------------------------------

    def start_job(
        self,
        kind: str,
        dataset: str,
        params: Json | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a job (EXPORT_ARCHIVE, ANALYZE, …) on a dataset; the same
        ``idempotency_key`` again returns the same job."""
        from quiver.client import jobs

        values = {"kind": kind.upper(), "datasetId": self.dataset_id(dataset), "params": params}
        values["idempotencyKey"] = idempotency_key
        found = self.execute(jobs.job_mutation("startJob", "StartJobInput", values))
        assert found is not None
        return jobs.Job.from_json(found, self)

    def job(self, job_id: str) -> Job:
        from quiver.client import jobs

        found = self.execute(jobs.job(job_id))
        if found is None:
            raise QuiverError(f"Job {job_id!r} was not found", code="NOT_FOUND")
        return jobs.Job.from_json(found, self)

    def jobs(
        self,
        *,
        dataset: str | None = None,
        status: list[str] | None = None,
        kind: list[str] | None = None,
    ) -> Iterator[Job]:
        """The jobs of the datasets you can read, newest first, narrowed by the filters."""
        from quiver.client import jobs

        filter: Json = {}
        if dataset is not None:
            filter["datasetId"] = self.dataset_id(dataset)
        if status:
            filter["status"] = [value.upper() for value in status]
        if kind:
            filter["kind"] = [value.upper() for value in kind]
        for found in self._pages(lambda after: jobs.jobs(after, filter)):
            yield jobs.Job.from_json(found, self)

    def follow_job(self, job_id: str, *, after_seq: int | None = None) -> Iterator[Job]:
        """The job's states as they change, over the ``jobProgress`` subscription, until it
        ends (reconnecting after a dropped connection without repeating a state)."""
        from quiver.client import jobs

        return jobs.follow(self, job_id, after_seq=after_seq)

    def wait_job(self, job_id: str, *, timeout: float | None = None) -> Job:
        """The job once it has ended; QuiverError TIMEOUT after ``timeout`` seconds."""
        from quiver.client import jobs

        deadline = None if timeout is None else time.monotonic() + timeout
        last: Job | None = None
        for last in jobs.follow(self, job_id, deadline=deadline):  # noqa: B007
            pass
        assert last is not None
        return last

    def cancel_job(self, job_id: str) -> Job:
        """Stop a job: at once while PENDING, at its next step while RUNNING."""
        return self._job_mutation("cancelJob", "CancelJobInput", job_id)

    def retry_job(self, job_id: str) -> Job:
        """Queue a FAILED or CANCELLED job again."""
        return self._job_mutation("retryJob", "RetryJobInput", job_id)

    def delete_job(self, job_id: str) -> None:
        """Remove a finished job."""
        from quiver.client import jobs

        self.execute(jobs.job_mutation("deleteJob", "DeleteJobInput", {"id": job_id}))

    def _job_mutation(self, name: str, input_type: str, job_id: str) -> Job:
        from quiver.client import jobs

        found = self.execute(jobs.job_mutation(name, input_type, {"id": job_id}))
        if found is None:
            raise QuiverError(f"Job {job_id!r} was not found", code="NOT_FOUND")
        return jobs.Job.from_json(found, self)

    # --- many files at once -------------------------------------------------------------

    def push(self, directory: str | Path, reference: str, **options: Any) -> PushReport:
        """Upload a folder's new and changed files and commit them (see quiver.client.push)."""
        from quiver.client.push import push

        return push(self, Path(directory), reference, **options)

    def pull(self, reference: str, directory: str | Path, **options: Any) -> PullReport:
        """Download a version (or the working set) into a folder (see quiver.client.pull)."""
        from quiver.client.pull import pull

        return pull(self, reference, Path(directory), **options)
