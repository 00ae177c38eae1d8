"""Datasets with files, made through the API: shared by the version, copy and lineage tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from conftest import Api

CREATE = """mutation($name: String!, $teamId: ID, $description: String, $tags: [String!]) {
  createDataset(input: {name: $name, teamId: $teamId, description: $description, tags: $tags}) {
    dataset { id } userErrors { field message code } } }"""
UPLOAD = """mutation($input: UploadFileInput!) { uploadFile(input: $input) {
  file { id } userErrors { field message code } } }"""
CREATE_VERSION = """mutation($id: ID!, $description: String) {
  createVersion(input: {datasetId: $id, description: $description}) {
    version { id number name fileCount totalSize } userErrors { field message code } } }"""
WORKING_SET = """query($id: ID!, $after: String) { dataset(id: $id) { fileCount totalSize
  files(first: 100, after: $after) { edges { node { id path sha256 metadata tags size } }
    pageInfo { hasNextPage endCursor } } } }"""
VERSION_FILES = """query($id: ID!, $after: String) { version(id: $id) { fileCount totalSize
  files(first: 100, after: $after) { edges { node { id path sha256 metadata tags size } }
    pageInfo { hasNextPage endCursor } } } }"""
SHARE = """mutation($datasetId: ID!, $userId: ID, $role: Role) {
  shareDataset(input: {datasetId: $datasetId, userId: $userId, role: $role}) {
    userErrors { field message code } } }"""


@dataclass(frozen=True)
class Listing:
    """What a user sees of a manifest: path -> (sha256, metadata, tags), and the totals."""

    files: dict[str, tuple[str, Any, list[str]]]
    ids: dict[str, str]
    file_count: int
    total_size: int


async def new_dataset(api: Api, token: str, name: str, **fields: Any) -> str:
    created = await api.mutate(CREATE, {"name": name, **fields}, token=token)
    return str(created["dataset"]["id"])


async def put(
    client: httpx.AsyncClient,
    token: str,
    dataset_id: str,
    path: str,
    content: bytes,
    *,
    metadata: Any = None,
    tags: list[str] | None = None,
) -> str:
    """Upload through GraphQL multipart; returns the file's ID."""
    variables = {"datasetId": dataset_id, "path": path, "file": None}
    if metadata is not None:
        variables["metadata"] = metadata
    if tags is not None:
        variables["tags"] = tags
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps({"query": UPLOAD, "variables": {"input": variables}}),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("blob", content, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    result = response.json()["data"]["uploadFile"]
    assert result["userErrors"] == [], result
    return str(result["file"]["id"])


async def dataset_with(
    api: Api, client: httpx.AsyncClient, token: str, name: str, files: dict[str, bytes]
) -> str:
    dataset_id = await new_dataset(api, token, name)
    for path, content in files.items():
        await put(client, token, dataset_id, path, content)
    return dataset_id


async def snapshot(api: Api, token: str, dataset_id: str, description: str | None = None) -> Any:
    created = await api.mutate(
        CREATE_VERSION, {"id": dataset_id, "description": description}, token=token
    )
    return created["version"]


async def working_set(api: Api, token: str | None, dataset_id: str) -> Listing:
    return await _listing(api, token, WORKING_SET, dataset_id, "dataset")


async def version_files(api: Api, token: str | None, version_id: str) -> Listing:
    return await _listing(api, token, VERSION_FILES, version_id, "version")


async def _listing(api: Api, token: str | None, query: str, node_id: str, root: str) -> Listing:
    files: dict[str, tuple[str, Any, list[str]]] = {}
    ids: dict[str, str] = {}
    after = None
    while True:
        data = (await api.data(query, {"id": node_id, "after": after}, token=token))[root]
        for edge in data["files"]["edges"]:
            node = edge["node"]
            files[node["path"]] = (node["sha256"], node["metadata"], node["tags"])
            ids[node["path"]] = node["id"]
        if not data["files"]["pageInfo"]["hasNextPage"]:
            return Listing(files, ids, data["fileCount"], data["totalSize"])
        after = data["files"]["pageInfo"]["endCursor"]


async def share(api: Api, owner_token: str, dataset_id: str, user_id: str, role: str) -> None:
    await api.mutate(
        SHARE, {"datasetId": dataset_id, "userId": user_id, "role": role}, token=owner_token
    )
