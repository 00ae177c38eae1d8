"""Quiver against real JavaScript clients: graphql-http's audit and an Apollo Federation gateway."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import (
    ensure_node_modules,
    migrated_sqlite,
    node_available,
    run_node,
    run_uvicorn,
)

CREATE_DATASET = """
mutation CreateDataset($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name }
    userErrors { field message code }
  }
}
"""


@pytest.fixture
def admin_key() -> str:
    return f"interop-{secrets.token_urlsafe(24)}"


@pytest.fixture
def quiver_env(tmp_path: Path, admin_key: str) -> dict[str, str]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return {
        "QUIVER_DATA_DIR": str(data_dir),
        "QUIVER_DATABASE_URL": migrated_sqlite(data_dir / "quiver.db"),
        "QUIVER_ADMIN_API_KEY": admin_key,
    }


def require_node() -> None:
    """Skip without Node locally; in CI (CI=true) a missing Node is a failure."""
    if not node_available():
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are required for the interop tests in CI")
        pytest.skip("node and npm are not installed")
    ensure_node_modules()


def json_lines(completed: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for raw in completed.stdout.splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pytest.fail(f"non-JSON line on stdout: {raw!r}\nstderr:\n{completed.stderr}")
    return lines


def review_score_for(dataset_id: str) -> float:
    """The toy reviews subgraph's score, as computed by tests/js/gateway.mjs."""
    return (100 + sum(ord(char) for char in dataset_id) % 400) / 100


def create_dataset(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": CREATE_DATASET, "variables": {"input": {"name": name}}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createDataset"]
    assert payload["userErrors"] == [], payload
    assert payload["dataset"]["name"] == name
    dataset: dict[str, Any] = payload["dataset"]
    return dataset


def test_graphql_http_audit_passes_every_check(quiver_env: dict[str, str]) -> None:
    require_node()
    with run_uvicorn(quiver_env) as base_url:
        completed = run_node("audit.mjs", f"{base_url}/graphql")

    lines = json_lines(completed)
    results = [line for line in lines if line["type"] == "result"]
    failures = [result for result in results if result["status"] != "ok"]
    for failure in failures:
        print(f"{failure['status'].upper()} {failure['id']} {failure['name']}: {failure['reason']}")
        http = f"HTTP {failure.get('httpStatus')} {failure.get('contentType')}"
        print(f"    {http}: {failure.get('body')}")
    assert len(results) > 0, f"the audit reported nothing\n{completed.stdout}\n{completed.stderr}"
    assert failures == [], f"{len(failures)} of {len(results)} audits are not ok (printed above)"
    assert completed.returncode == 0, completed.stderr


def test_apollo_gateway_composes_quiver_with_a_subgraph_extending_dataset(
    quiver_env: dict[str, str], admin_key: str
) -> None:
    require_node()
    names = [f"interop-{secrets.token_hex(4)}-alpha", f"interop-{secrets.token_hex(4)}-beta"]
    with run_uvicorn(quiver_env) as base_url:
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
            created = [create_dataset(client, name) for name in names]
        featured = created[1]
        completed = run_node(
            "gateway.mjs",
            f"{base_url}/graphql",
            featured["id"],
            env={"QUIVER_API_KEY": admin_key},
        )

    lines = json_lines(completed)
    print(completed.stdout[-5000:], completed.stderr[-5000:], sep="\n")
    assert completed.returncode == 0, f"gateway.mjs failed:\n{completed.stdout}\n{completed.stderr}"
    assert any(line["type"] == "composed" for line in lines)
    operations = {line["name"]: line for line in lines if line["type"] == "operation"}

    listed = operations["DatasetsWithReviews"]
    assert listed["errors"] is None
    nodes = {edge["node"]["id"]: edge["node"] for edge in listed["data"]["datasets"]["edges"]}
    for dataset in created:
        assert nodes[dataset["id"]] == {
            "id": dataset["id"],
            "name": dataset["name"],
            "reviewScore": review_score_for(dataset["id"]),
        }

    featured_result = operations["FeaturedDataset"]
    assert featured_result["errors"] is None
    assert featured_result["data"]["featuredDataset"] == {
        "id": featured["id"],
        "name": featured["name"],
        "reviewScore": review_score_for(featured["id"]),
    }

    summary = next(line for line in lines if line["type"] == "summary")
    assert summary["ok"] is True
    # The gateway fetched reviewScore for Quiver's datasets from the toy subgraph's _entities.
    assert {dataset["id"] for dataset in created} <= set(summary["entityReferencesResolved"])
