"""What the client's methods for datasets, versions, files and lineage do, as plans (see
quiver.client.steps) that ``Client`` and ``AsyncClient`` both run. Tables, labels and jobs
have theirs in quiver.client.tables, quiver.client.labels and quiver.client.jobs."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quiver.client import operations as ops
from quiver.client import tus
from quiver.client.errors import QuiverError
from quiver.client.references import Reference, parse_reference
from quiver.client.steps import Offload, Paging, Plan, Request, Save, WithClient, find, ready
from quiver.client.transport import dataset_id_in, interpret, raise_for_status
from quiver.client.types import (
    Dataset,
    File,
    Json,
    LineageGraph,
    Version,
    VersionDiff,
)

if TYPE_CHECKING:
    import httpx

    from quiver.client.client import Client

# Files up to this size go in one multipart request; larger ones through resumable tus.
SMALL_UPLOAD = 8 * 1024 * 1024


class Plans:
    """The plans of one client, and what they remember: the IDs of datasets named so far, and
    the sync client that read a ``Job`` (so ``job.wait()`` works), when it is one."""

    def __init__(self, owner: Client | None = None) -> None:
        self.owner = owner
        self.dataset_ids: dict[Reference, str] = {}

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
    ) -> Plan[Paging[Dataset]]:
        """Every dataset the caller can read that passes the filters, a page at a time."""
        given = {"type": type, "tags": tags, "keyword": keyword, "status": status}
        given |= {"project": project, "visibility": visibility}
        filter: Json = {key: value for key, value in given.items() if value is not None}
        filter["includeDeleted"] = include_deleted
        order = {"field": order_by, "direction": "DESC" if descending else "ASC"}
        return (yield from ready(Paging(lambda after: ops.datasets(after, filter, order))))

    def dataset(self, reference: str) -> Plan[Dataset]:
        """A dataset by ID, by name in the caller's team, or ``team/name``."""
        if dataset_id_in(reference):
            found: Dataset = yield ops.dataset(id=reference)
            return found
        parsed = parse_reference(reference)
        team_id = (yield from self.team_id(parsed.team)) if parsed.team else None
        found = yield ops.dataset(name=parsed.dataset, team=team_id)
        self.dataset_ids[Reference(parsed.dataset, parsed.team)] = found.id
        return found

    def dataset_id(self, reference: str) -> Plan[str]:
        if dataset_id_in(reference):
            return reference
        parsed = parse_reference(reference)
        key = Reference(parsed.dataset, parsed.team)
        if key not in self.dataset_ids:
            yield from self.dataset(str(key))
        return self.dataset_ids[key]

    def team_id(self, name: str) -> Plan[str]:
        teams: dict[str, str] = yield ops.viewer_teams()
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
    ) -> Plan[Dataset]:
        values: Json = {"name": name, "description": description, "type": type, "tags": tags}
        values |= {"visibility": visibility, "licence": licence, "project": project}
        values["teamId"] = (yield from self.team_id(team)) if team else None
        made: Dataset = yield ops.create_dataset(values)
        return made

    def update_dataset(self, /, reference: str, **changes: Any) -> Plan[Dataset]:
        """Change only the given fields (name, description, type, tags, visibility, …)."""
        dataset_id = yield from self.dataset_id(reference)
        changed: Dataset = yield ops.update_dataset({"id": dataset_id, **changes})
        return changed

    def delete_dataset(self, reference: str, *, hard: bool = False) -> Plan[None]:
        yield ops.delete_dataset((yield from self.dataset_id(reference)), hard)
        self.dataset_ids.clear()

    def reinstate_dataset(self, dataset_id: str) -> Plan[Dataset]:
        found: Dataset = yield ops.reinstate_dataset(dataset_id)
        return found

    def clear_dataset(self, reference: str) -> Plan[Dataset]:
        found: Dataset = yield ops.clear_dataset((yield from self.dataset_id(reference)))
        return found

    def copy_dataset(
        self, reference: str, new_name: str | None = None, *, only_paths: list[str] | None = None
    ) -> Plan[Dataset]:
        source = yield from self.source_id(reference)
        made: Dataset = yield ops.copy_dataset(
            {"id": source, "newName": new_name, "onlyPaths": only_paths}
        )
        return made

    def merge_datasets(
        self,
        target: str,
        source: str,
        *,
        on_conflict: str = "FAIL",
        delete_source: bool = False,
        hard: bool = False,
    ) -> Plan[Dataset]:
        values: Json = {"targetId": (yield from self.dataset_id(target))}
        values["sourceId"] = yield from self.dataset_id(source)
        values |= {"onConflict": on_conflict, "deleteSource": delete_source, "hard": hard}
        merged: Dataset = yield ops.merge_datasets(values)
        return merged

    def share_dataset(
        self,
        reference: str,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        role: str | None = "READ",
    ) -> Plan[Dataset]:
        """Grant a user or a team ``role`` on the dataset (None revokes it)."""
        values = {"datasetId": (yield from self.dataset_id(reference)), "userId": user_id}
        shared: Dataset = yield ops.share_dataset(values | {"teamId": team_id, "role": role})
        return shared

    # --- versions -----------------------------------------------------------------------

    def versions(self, reference: str) -> Plan[Paging[Version]]:
        """The dataset's versions, newest first."""
        dataset_id = yield from self.dataset_id(reference)
        return Paging(lambda after: ops.versions(dataset_id, after))

    def version(self, reference: str, number: int | None = None) -> Plan[Version]:
        """Version ``number`` (or the one ``reference`` names with @vN; else the latest)."""
        parsed = parse_reference(reference) if not dataset_id_in(reference) else None
        wanted = number or (parsed.version if parsed else None)
        paging = yield from self.versions(reference)
        found = yield from find(paging, lambda v: wanted is None or v.number == wanted)
        if found is None:
            what = f"v{wanted}" if wanted else "any version"
            raise QuiverError(f"{reference} has no {what}", code="NOT_FOUND")
        return found

    def version_of(self, reference: str) -> Plan[Version | None]:
        """The version ``reference`` names with @vN; None for the working set."""
        if dataset_id_in(reference) or parse_reference(reference).version is None:
            return None
        return (yield from self.version(reference))

    def version_id_of(self, reference: str) -> Plan[str | None]:
        found = yield from self.version_of(reference)
        return found.id if found else None

    def source_id(self, reference: str) -> Plan[str]:
        """A dataset's ID, or its version's when ``reference`` names one (``name@v2``)."""
        return (yield from self.version_id_of(reference)) or (yield from self.dataset_id(reference))

    def create_version(
        self, reference: str, description: str | None = None, *, allow_empty: bool = False
    ) -> Plan[Version]:
        dataset_id = yield from self.dataset_id(reference)
        made: Version = yield ops.create_version(dataset_id, description, allow_empty)
        return made

    def diff(self, reference: str, old: int, new: int) -> Plan[VersionDiff]:
        """What changed from version ``old`` to version ``new``."""
        newer = yield from self.version(reference, new)
        older = yield from self.version(reference, old)
        found: VersionDiff = yield ops.diff(newer.id, older.id)
        return found

    def restore_version(self, reference: str, number: int) -> Plan[Dataset]:
        version = yield from self.version(reference, number)
        restored: Dataset = yield ops.restore_version(version.id)
        return restored

    # --- files --------------------------------------------------------------------------

    def files(self, reference: str, *, prefix: str | None = None) -> Plan[Paging[File]]:
        """The working set's files (or a version's, for ``name@vN``), by path."""
        version = yield from self.version_id_of(reference)
        if version is not None:
            return Paging(lambda after: ops.version_files(version, after, prefix))
        dataset_id = yield from self.dataset_id(reference)
        return Paging(lambda after: ops.files(dataset_id, after, prefix))

    def file(self, reference: str, path: str) -> Plan[File]:
        """One file (with a signed download URL); NOT_FOUND when there is none."""
        version = yield from self.version_id_of(reference)
        dataset_id = yield from self.dataset_id(reference)
        found: File | None = yield ops.file(dataset_id, path, version_id=version)
        if found is None:
            raise QuiverError(f"{reference} has no file {path!r}", code="NOT_FOUND")
        return found

    def upload_file(
        self,
        reference: str,
        path: str,
        source: str | Path | bytes,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        content_type: str | None = None,
    ) -> Plan[File]:
        """Add or replace ``path`` with a local file's bytes (or ``bytes``): one request for
        small files, resumable tus for large ones."""
        dataset_id = yield from self.dataset_id(reference)
        if isinstance(source, bytes):
            data: bytes = source
        else:
            local = Path(source)
            size: int = yield Offload(lambda: local.stat().st_size)
            if size > SMALL_UPLOAD:
                yield WithClient(lambda c: _send_by_tus(c, dataset_id, path, local, content_type))
                if metadata is not None or tags is not None:
                    return (
                        yield from self.set_file_metadata(
                            reference, path, metadata=metadata, tags=tags
                        )
                    )
                return (yield from self.file(reference, path))
            data = yield Offload(local.read_bytes)
        values: Json = {"datasetId": dataset_id, "path": path, "file": None}
        values |= {"metadata": metadata, "tags": tags, "contentType": content_type}
        operations = {"query": ops.UPLOAD_FILE, "variables": {"input": values}}
        guessed = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        form = {"operations": json.dumps(operations), "map": '{"0": ["variables.input.file"]}'}
        response: httpx.Response = yield Request(
            "POST",
            "/graphql",
            {
                "data": form,
                "files": {"0": (Path(path).name or "file", data, guessed)},
                "headers": {"GraphQL-Require-Preflight": "1"},
            },
        )
        return interpret(response, ops.Operation("", {}, ops.parse_upload))

    def read_bytes(
        self, reference: str, path: str, *, start: int = 0, end: int | None = None
    ) -> Plan[bytes]:
        """A file's bytes, or the range ``start`` to ``end`` (exclusive)."""
        url = (yield from self.file(reference, path)).download_url
        assert url is not None
        return (yield from self.read_url(url, start=start, end=end))

    def read_url(self, url: str, *, start: int = 0, end: int | None = None) -> Plan[bytes]:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        response: httpx.Response = yield Request(
            "GET", url, {"headers": extra, "follow_redirects": True}
        )
        if response.status_code == 416:
            return b""
        raise_for_status(response)
        return response.content

    def download_file(self, reference: str, path: str, destination: str | Path) -> Plan[Path]:
        """Save one file to ``destination`` (a file name, or a folder to put it in)."""
        target = Path(destination)
        if (yield Offload(target.is_dir)):
            target = target / Path(path).name
        found = yield from self.file(reference, path)
        assert found.download_url is not None
        saved: Path = yield Save(found.download_url, target)
        return saved

    def move_file(
        self, reference: str, path: str, new_path: str, *, overwrite: bool = False
    ) -> Plan[File]:
        values = {"datasetId": (yield from self.dataset_id(reference)), "path": path}
        moved: File = yield ops.move_file(values | {"newPath": new_path, "overwrite": overwrite})
        return moved

    def set_file_metadata(
        self,
        reference: str,
        path: str,
        *,
        metadata: Json | None = None,
        tags: list[str] | None = None,
        merge: bool = False,
    ) -> Plan[File]:
        values: Json = {"datasetId": (yield from self.dataset_id(reference)), "path": path}
        values |= {"metadata": metadata, "tags": tags, "merge": merge}
        changed: File = yield ops.set_file_metadata(values)
        return changed

    def delete_files(self, reference: str, paths: list[str]) -> Plan[list[str]]:
        """Remove paths from the working set; the ones that were there."""
        deleted: list[str] = yield ops.delete_files((yield from self.dataset_id(reference)), paths)
        return deleted

    # --- lineage ------------------------------------------------------------------------

    def lineage(
        self, reference: str, *, direction: str = "BOTH", depth: int = 3
    ) -> Plan[LineageGraph]:
        node = yield from self.source_id(reference)
        graph: LineageGraph = yield ops.lineage(node, direction, depth)
        return graph

    def label_owner(self, reference: str) -> Plan[tuple[str, str]]:
        """("version", its ID) for ``name@vN``, else ("dataset", its ID)."""
        version = yield from self.version_id_of(reference)
        if version is not None:
            return "version", version
        return "dataset", (yield from self.dataset_id(reference))


def _send_by_tus(
    client: Client, dataset_id: str, path: str, source: Path, content_type: str | None
) -> None:
    size = source.stat().st_size
    values = {"datasetId": dataset_id, "path": path}
    if content_type:
        values["contentType"] = content_type
    url = tus.create(client.request, length=size, metadata=tus.encode_metadata(values))
    tus.send(client.request, url, source, start=0, length=size)
