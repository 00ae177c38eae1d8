"""The client's GraphQL operations, each a query and a parser of its answer, so the sync and
async clients share every operation and differ only in how they send it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from quiver.client.errors import QuiverError, UserError
from quiver.client.types import (
    ColumnStatistics,
    Dataset,
    DiffEntry,
    File,
    Json,
    LineageEdge,
    LineageGraph,
    LineageNode,
    Page,
    QualityCheck,
    QualityReport,
    Table,
    TableStatistics,
    Version,
    VersionDiff,
)

T = TypeVar("T")
PAGE_SIZE = 100

DATASET_FIELDS = """id name description type status visibility tags fileCount totalSize
  createdAt updatedAt deletedAt owner { name } latestVersion { id number }"""
FILE_FIELDS = "id path size sha256 contentType metadata tags createdAt"
# What a pull needs of each file: every field more is resolved per file on the server.
PULL_FIELDS = "id path size sha256"
VERSION_FIELDS = "id number name description fileCount totalSize createdAt createdBy { name }"
# No totalCount: it costs the server a COUNT a page, and iterating needs only the cursor.
PAGE_INFO = "pageInfo { hasNextPage endCursor }"
USER_ERRORS = "userErrors { field message code }"


def _mutation(name: str, input_type: str, selection: str) -> str:
    head = f"mutation($input: {input_type}!) {{ {name}(input: $input)"
    return f"{head} {{ {selection} {USER_ERRORS} }} }}"


@dataclass(frozen=True)
class Operation(Generic[T]):
    query: str
    variables: dict[str, Any]
    parse: Callable[[Json], T]


def _page(connection: Json, build: Callable[[Json], T]) -> Page[T]:
    info = connection["pageInfo"]
    return Page(
        items=[build(edge["node"]) for edge in connection["edges"]],
        end_cursor=info["endCursor"],
        has_next_page=bool(info["hasNextPage"]),
        total_count=connection.get("totalCount"),
    )


def _payload(data: Json, name: str) -> Json:
    payload: Json = data[name]
    if payload.get("userErrors"):
        raise UserError(payload["userErrors"])
    return payload


def _check(data: Json, name: str) -> None:
    _payload(data, name)


def _found(value: Json | None, what: str) -> Json:
    if value is None:
        raise QuiverError(f"{what} was not found", code="NOT_FOUND")
    return value


# --- datasets ---------------------------------------------------------------------------


def dataset(
    *, id: str | None = None, name: str | None = None, team: str | None = None
) -> Operation[Dataset]:
    what = f"Dataset {name or id!r}"
    return Operation(
        "query($id: ID, $name: String, $team: ID) { dataset(id: $id, name: $name, team: $team) { "
        f"{DATASET_FIELDS} }} }}",
        {"id": id, "name": name, "team": team},
        lambda data: Dataset.from_json(_found(data["dataset"], what)),
    )


def datasets(
    after: str | None, filter: Json | None, order_by: Json | None
) -> Operation[Page[Dataset]]:
    return Operation(
        f"""query($after: String, $filter: DatasetFilter, $order: DatasetOrder) {{
  datasets(first: {PAGE_SIZE}, after: $after, filter: $filter, orderBy: $order) {{
    edges {{ node {{ {DATASET_FIELDS} }} }} {PAGE_INFO} }} }}""",
        {"after": after, "filter": filter, "order": order_by},
        lambda data: _page(data["datasets"], Dataset.from_json),
    )


def viewer_teams() -> Operation[dict[str, str]]:
    return Operation(
        "{ viewer { name teams { id name } } }",
        {},
        lambda data: {t["name"]: t["id"] for t in (data["viewer"] or {}).get("teams", [])},
    )


def viewer_name() -> Operation[str | None]:
    return Operation("{ viewer { name } }", {}, lambda data: (data["viewer"] or {}).get("name"))


def _dataset_mutation(name: str, input_type: str, values: Json) -> Operation[Dataset]:
    return Operation(
        _mutation(name, input_type, f"dataset {{ {DATASET_FIELDS} }}"),
        {"input": values},
        lambda data: Dataset.from_json(_payload(data, name)["dataset"]),
    )


def create_dataset(values: Json) -> Operation[Dataset]:
    return _dataset_mutation("createDataset", "CreateDatasetInput", values)


def update_dataset(values: Json) -> Operation[Dataset]:
    return _dataset_mutation("updateDataset", "UpdateDatasetInput", values)


def delete_dataset(id: str, hard: bool) -> Operation[None]:
    return Operation(
        _mutation("deleteDataset", "DeleteDatasetInput", "__typename"),
        {"input": {"id": id, "hard": hard}},
        lambda data: _check(data, "deleteDataset"),
    )


def reinstate_dataset(id: str) -> Operation[Dataset]:
    return _dataset_mutation("reinstateDataset", "ReinstateDatasetInput", {"id": id})


def clear_dataset(id: str) -> Operation[Dataset]:
    return _dataset_mutation("clearDataset", "ClearDatasetInput", {"id": id})


def copy_dataset(values: Json) -> Operation[Dataset]:
    return _dataset_mutation("copyDataset", "CopyDatasetInput", values)


def merge_datasets(values: Json) -> Operation[Dataset]:
    return _dataset_mutation("mergeDatasets", "MergeDatasetsInput", values)


def share_dataset(values: Json) -> Operation[Dataset]:
    return _dataset_mutation("shareDataset", "ShareDatasetInput", values)


def restore_version(version_id: str) -> Operation[Dataset]:
    return _dataset_mutation("restoreVersion", "RestoreVersionInput", {"versionId": version_id})


# --- files ------------------------------------------------------------------------------


def files(
    dataset_id: str,
    after: str | None,
    prefix: str | None,
    *,
    urls: bool = False,
    fields: str = FILE_FIELDS,
) -> Operation[Page[File]]:
    return _files("dataset", "Dataset", dataset_id, after, prefix, urls=urls, fields=fields)


def version_files(
    version_id: str,
    after: str | None,
    prefix: str | None,
    *,
    urls: bool = False,
    fields: str = FILE_FIELDS,
) -> Operation[Page[File]]:
    return _files("version", "Version", version_id, after, prefix, urls=urls, fields=fields)


def _files(
    owner: str,
    typename: str,
    owner_id: str,
    after: str | None,
    prefix: str | None,
    *,
    urls: bool,
    fields: str,
) -> Operation[Page[File]]:
    """A page of the files of a dataset (its live files) or of a version."""
    url = " downloadUrl(expiresIn: 86400)" if urls else ""
    return Operation(
        f"""query($id: ID!, $after: String, $prefix: String) {{ {owner}(id: $id) {{
  files(first: {PAGE_SIZE}, after: $after, prefix: $prefix) {{
    edges {{ node {{ {fields}{url} }} }} {PAGE_INFO} }} }} }}""",
        {"id": owner_id, "after": after, "prefix": prefix},
        lambda data: _page(_found(data[owner], typename)["files"], File.from_json),
    )


def file(dataset_id: str, path: str, *, version_id: str | None = None) -> Operation[File | None]:
    """The file at ``path`` (with a download URL), or None when there is none."""
    owner = "version" if version_id else "dataset"
    fields = f"file(path: $path) {{ {FILE_FIELDS} downloadUrl(expiresIn: 86400) }}"
    return Operation(
        f"query($id: ID!, $path: String!) {{ {owner}(id: $id) {{ {fields} }} }}",
        {"id": version_id or dataset_id, "path": path},
        lambda data: (
            File.from_json(found) if (found := _found(data[owner], owner.title())["file"]) else None
        ),
    )


def _file_mutation(name: str, input_type: str, values: Json) -> Operation[File]:
    return Operation(
        _mutation(name, input_type, f"file {{ {FILE_FIELDS} }}"),
        {"input": values},
        lambda data: File.from_json(_payload(data, name)["file"]),
    )


def move_file(values: Json) -> Operation[File]:
    return _file_mutation("moveFile", "MoveFileInput", values)


def set_file_metadata(values: Json) -> Operation[File]:
    return _file_mutation("setFileMetadata", "SetFileMetadataInput", values)


UPLOAD_FILE = f"""mutation($input: UploadFileInput!) {{ uploadFile(input: $input) {{
  file {{ {FILE_FIELDS} }} {USER_ERRORS} }} }}"""


def parse_upload(data: Json) -> File:
    return File.from_json(_payload(data, "uploadFile")["file"])


def delete_files(dataset_id: str, paths: list[str]) -> Operation[list[str]]:
    return Operation(
        _mutation("deleteFiles", "DeleteFilesInput", "deletedPaths"),
        {"input": {"datasetId": dataset_id, "paths": paths}},
        lambda data: list(_payload(data, "deleteFiles")["deletedPaths"]),
    )


# --- versions ---------------------------------------------------------------------------


def versions(dataset_id: str, after: str | None) -> Operation[Page[Version]]:
    return Operation(
        f"""query($id: ID!, $after: String) {{ dataset(id: $id) {{
  versions(first: {PAGE_SIZE}, after: $after) {{
    edges {{ node {{ {VERSION_FIELDS} }} }} {PAGE_INFO} }} }} }}""",
        {"id": dataset_id, "after": after},
        lambda data: _page(_found(data["dataset"], "Dataset")["versions"], Version.from_json),
    )


def create_version(
    dataset_id: str, description: str | None, allow_empty: bool
) -> Operation[Version]:
    return Operation(
        _mutation("createVersion", "CreateVersionInput", f"version {{ {VERSION_FIELDS} }}"),
        {"input": {"datasetId": dataset_id, "description": description, "allowEmpty": allow_empty}},
        lambda data: Version.from_json(_payload(data, "createVersion")["version"]),
    )


DIFF_ENTRY = "path oldPath sha256 oldSha256 size"


def diff(version_id: str, against: str) -> Operation[VersionDiff]:
    # Each list is paged by the server at up to 1,000 entries here; counts are exact.
    lists = " ".join(
        f"{name}(first: 1000) {{ {DIFF_ENTRY} }}"
        for name in ("added", "removed", "changed", "renamed")
    )

    def parse(data: Json) -> VersionDiff:
        found = _found(data["version"], "Version")["diff"]

        def entries(name: str) -> list[DiffEntry]:
            return [DiffEntry.from_json(entry) for entry in found[name]]

        return VersionDiff(
            added=entries("added"),
            removed=entries("removed"),
            changed=entries("changed"),
            renamed=entries("renamed"),
            added_count=found["addedCount"],
            removed_count=found["removedCount"],
            changed_count=found["changedCount"],
            renamed_count=found["renamedCount"],
        )

    return Operation(
        f"""query($id: ID!, $against: ID!) {{ version(id: $id) {{ diff(against: $against) {{
  {lists} addedCount removedCount changedCount renamedCount }} }} }}""",
        {"id": version_id, "against": against},
        parse,
    )


# --- tables -----------------------------------------------------------------------------

STATISTICS = """rowCount duplicateRows columns { name dtype count missing missingPercent unique
  min max mean std percentiles { p25 p50 p75 } outlierCount topValues { value count } }"""


def _table(
    version_id: str,
    path: str | None,
    selection: str,
    parse: Callable[[Json], T],
    baseline: str | None = None,
) -> Operation[T]:
    def parse_table(data: Json) -> T:
        table = _found(data["version"], "Version")["table"]
        return parse(_found(table, f"A table at {path!r}" if path else "A table"))

    return Operation(
        f"query($id: ID!, $path: String{', $baseline: ID!' if baseline else ''}) "
        f"{{ version(id: $id) {{ table(path: $path) {{ {selection} }} }} }}",
        {"id": version_id, "path": path} | ({"baseline": baseline} if baseline else {}),
        parse_table,
    )


def table(version_id: str, path: str | None) -> Operation[Table]:
    return _table(
        version_id,
        path,
        "path rowCount columnCount columns { name dtype nullable }",
        Table.from_json,
    )


def preview(version_id: str, path: str | None, limit: int) -> Operation[list[Json]]:
    return _table(version_id, path, f"preview(limit: {int(limit)})", lambda t: list(t["preview"]))


def statistics(
    version_id: str, path: str | None, bins: int, top_k: int
) -> Operation[TableStatistics]:
    def parse(t: Json) -> TableStatistics:
        stats = t["statistics"]
        return TableStatistics(
            row_count=int(stats["rowCount"]),
            duplicate_rows=int(stats["duplicateRows"]),
            columns=[ColumnStatistics.from_json(c) for c in stats["columns"]],
        )

    return _table(
        version_id,
        path,
        f"statistics(bins: {int(bins)}, topK: {int(top_k)}) {{ {STATISTICS} }}",
        parse,
    )


def quality(version_id: str, path: str | None) -> Operation[QualityReport]:
    def parse(t: Json) -> QualityReport:
        report = t["quality"]
        checks = [
            QualityCheck(c["name"], bool(c["passed"]), c.get("details")) for c in report["checks"]
        ]
        return QualityReport(float(report["overallScore"]), checks)

    return _table(
        version_id, path, "quality { overallScore checks { name passed details } }", parse
    )


def compare(version_id: str, path: str | None, baseline: str) -> Operation[Json]:
    selection = """compare(baseline: $baseline) {
  summary { baselineRows rows rowsDiff columnsAdded columnsRemoved columnsTypeChanged }
  columns { name kind baselineMean mean baselineStd std baselineMissing missing meanShiftPct psi
    shiftLevel newCategories vanishedCategories } }"""
    return _table(version_id, path, selection, lambda t: dict(t["compare"]), baseline)


# --- lineage ----------------------------------------------------------------------------


def lineage(id: str, direction: str, depth: int) -> Operation[LineageGraph]:
    def node(data: Json) -> LineageNode:
        kind = data["__typename"]
        name = data.get("name") or data.get("entityName") or data.get("externalId")
        if kind == "Version":
            name = data.get("versionName")
        return LineageNode(id=data["id"], kind=data.get("kind") or kind, name=name)

    def parse(data: Json) -> LineageGraph:
        graph = data["lineage"]
        return LineageGraph(
            nodes=[node(n) for n in graph["nodes"]],
            edges=[LineageEdge(e["source"], e["target"], e["relation"]) for e in graph["edges"]],
        )

    return Operation(
        """query($id: ID!, $direction: LineageDirection!, $depth: Int!) {
  lineage(id: $id, direction: $direction, depth: $depth) {
    nodes { __typename ... on Dataset { id name } ... on Version { id versionName: name }
            ... on ExternalEntity { id kind externalId entityName: name } }
    edges { source target relation } } }""",
        {"id": id, "direction": direction, "depth": depth},
        parse,
    )
