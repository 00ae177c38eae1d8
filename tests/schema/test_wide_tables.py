"""Wide tables: refused past QUIVER_MAX_TABLE_COLUMNS on every path that reads a table, and
correlations over a bounded set of columns (issue 15, item 1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import Api, dataset_with, put, snapshot

from quiver.app import create_app
from quiver.config import Settings

pytestmark = pytest.mark.anyio

LIMIT = 40
FILE_TABLE = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { columnCount } } } }"""
VERSION_TABLE = """query($id: ID!) { version(id: $id) { table { columnCount } } }"""
COMPARE = """query($id: ID!, $baseline: ID!) { version(id: $id) { table {
  compare(baseline: $baseline) { summary { rows } } } } }"""
STATISTICS = """query($id: ID!, $path: String!, $n: Int) { dataset(id: $id) {
  file(path: $path) { table { statistics(correlationColumns: $n) {
    columns { name } correlatedColumns correlations { x y } } } } } }"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(max_table_columns=LIMIT)


def csv_of(columns: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    rows = "".join(",".join(str(row * i) for i in range(columns)) + "\n" for row in range(5))
    return (header + "\n" + rows).encode()


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    return dict(error)


async def test_a_file_wider_than_the_setting_is_invalid_naming_its_column_count(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    files = {"wide.csv": csv_of(LIMIT + 1), "fits.csv": csv_of(LIMIT)}
    dataset_id = await dataset_with(api, client, admin_token, "wide", files)
    body = await api.post(FILE_TABLE, {"id": dataset_id, "path": "wide.csv"}, token=admin_token)
    assert body["data"]["dataset"]["file"]["table"] is None
    error = refusal(body)
    assert error["extensions"]["code"] == "INVALID"
    assert error["message"] == (
        f"wide.csv: The table has {LIMIT + 1} columns; at most {LIMIT} columns can be read "
        "as a table"
    )
    fits = await api.data(FILE_TABLE, {"id": dataset_id, "path": "fits.csv"}, token=admin_token)
    assert fits["dataset"]["file"]["table"] == {"columnCount": LIMIT}


async def test_version_tables_exports_and_drift_refuse_a_wide_table_too(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "w", {"t.csv": csv_of(3)})
    narrow = await snapshot(api, admin_token, dataset_id)
    await put(client, admin_token, dataset_id, "t.csv", csv_of(LIMIT + 5))
    wide = await snapshot(api, admin_token, dataset_id)
    message = f"has {LIMIT + 5} columns; at most {LIMIT}"

    body = await api.post(VERSION_TABLE, {"id": wide["id"]}, token=admin_token)
    assert refusal(body)["extensions"]["code"] == "INVALID"
    assert message in refusal(body)["message"]

    variables = {"id": wide["id"], "baseline": narrow["id"]}
    body = await api.post(COMPARE, variables, token=admin_token)
    assert refusal(body)["extensions"]["code"] == "INVALID"
    # The wide side as the baseline is refused as well.
    variables = {"id": narrow["id"], "baseline": wide["id"]}
    body = await api.post(COMPARE, variables, token=admin_token)
    assert message in refusal(body)["message"]

    headers = {"Authorization": f"Bearer {admin_token}"}
    for export_format in ("csv", "parquet", "xlsx"):
        response = await client.get(
            f"/versions/{wide['id']}/export", params={"format": export_format}, headers=headers
        )
        assert response.status_code == 400
        assert response.text.startswith("INVALID:")
        assert message in response.text


async def test_a_raised_limit_reads_a_table_refused_before(
    api: Api, client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "w", {"t.csv": csv_of(LIMIT + 1)})
    variables = {"id": dataset_id, "path": "t.csv"}
    assert "errors" in await api.post(FILE_TABLE, variables, token=admin_token)
    wider = create_app(settings.with_overrides(max_table_columns=LIMIT + 1), manage_database=False)
    transport = httpx.ASGITransport(app=wider)
    async with httpx.AsyncClient(transport=transport, base_url="http://quiver.test") as other:
        found = await Api(other).data(FILE_TABLE, variables, token=admin_token)
    assert found["dataset"]["file"]["table"] == {"columnCount": LIMIT + 1}


async def test_statistics_correlate_the_first_columns_unless_asked_for_more(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "s", {"t.csv": csv_of(LIMIT)})
    variables: dict[str, Any] = {"id": dataset_id, "path": "t.csv", "n": 3}
    data = await api.data(STATISTICS, variables, token=admin_token)
    stats = data["dataset"]["file"]["table"]["statistics"]
    assert len(stats["columns"]) == LIMIT
    assert stats["correlatedColumns"] == ["c0", "c1", "c2"]
    assert stats["correlations"] == [
        {"x": "c0", "y": "c1"},
        {"x": "c0", "y": "c2"},
        {"x": "c1", "y": "c2"},
    ]
    del variables["n"]  # an unset variable: the argument's default
    default = await api.data(STATISTICS, variables, token=admin_token)
    assert len(default["dataset"]["file"]["table"]["statistics"]["correlatedColumns"]) == LIMIT
    variables["n"] = 201
    body = await api.post(STATISTICS, variables, token=admin_token)
    assert refusal(body)["extensions"]["argument"] == "correlationColumns"
