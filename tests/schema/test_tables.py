"""Tables through GraphQL and /versions/{id}/export: lazily computed, cached by content."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import Api, QueryCounter, dataset_with, new_dataset, put, snapshot

from quiver.analytics import exports
from quiver.resolvers.tables import ANALYSES

pytestmark = pytest.mark.anyio

CSV = (
    b"city;temp;rain;when\n"
    b"Oslo;3.5;true;2026-01-01\n"
    b"Lima;22.0;false;2026-01-02\n"
    b"Oslo;4.5;true;2026-01-03\n"
    b"Cairo;;false;2026-01-04\n"
)
FILE_TABLE = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { path rowCount columnCount columns { name dtype nullable } preview(limit: 2) } } } }"""
STATISTICS = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { statistics { rowCount duplicateRows memoryUsage
    columns { name dtype count missing missingPercent unique min max mean std
      percentiles { p25 p50 p75 } iqr outlierCount histogram { counts binEdges }
      topValues { value count } }
    correlations { x y pearson } } } } } }"""
VERSION_TABLE = """query($id: ID!, $path: String) { version(id: $id) {
  table(path: $path) { path rowCount } } }"""


def analyses() -> float:
    return sum(
        sample.value
        for metric in ANALYSES.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def table_of(api: Api, token: str, dataset_id: str, path: str, query: str) -> Any:
    data = await api.data(query, {"id": dataset_id, "path": path}, token=token)
    return data["dataset"]["file"]["table"]


async def test_a_csv_file_reads_as_a_table(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "weather", {"w.csv": CSV})
    table = await table_of(api, admin_token, dataset_id, "w.csv", FILE_TABLE)
    assert (table["path"], table["rowCount"], table["columnCount"]) == ("w.csv", 4, 4)
    assert table["columns"] == [
        # Three distinct values in four rows are too many for a category.
        {"name": "city", "dtype": "object", "nullable": False},
        {"name": "temp", "dtype": "float64", "nullable": True},
        {"name": "rain", "dtype": "bool", "nullable": False},
        {"name": "when", "dtype": "datetime64", "nullable": False},
    ]
    assert table["preview"][0]["city"] == "Oslo"
    assert table["preview"][1]["temp"] == 22.0
    assert len(table["preview"]) == 2


async def test_files_that_are_not_tables_have_no_table(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "pics", {"cat.jpg": b"\xff\xd8"})
    data = await api.data(FILE_TABLE, {"id": dataset_id, "path": "cat.jpg"}, token=admin_token)
    assert data["dataset"]["file"]["table"] is None


async def test_statistics_are_computed_once_per_content_whoever_asks(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    first = await dataset_with(api, client, admin_token, "first", {"w.csv": CSV})
    before = analyses()
    stats = (await table_of(api, admin_token, first, "w.csv", STATISTICS))["statistics"]
    computed = analyses() - before
    assert computed >= 1
    temp = next(column for column in stats["columns"] if column["name"] == "temp")
    assert (temp["count"], temp["missing"], temp["min"], temp["max"]) == (3, 1, 3.5, 22.0)
    assert temp["mean"] == pytest.approx(10.0, rel=1e-12)
    assert temp["missingPercent"] == 25.0
    city = next(column for column in stats["columns"] if column["name"] == "city")
    assert city["topValues"][0] == {"value": "Oslo", "count": 2}
    assert stats["rowCount"] == 4

    # Asking again, or for the same bytes in another dataset, analyses nothing.
    second = await dataset_with(api, client, admin_token, "second", {"copy.csv": CSV})
    again = analyses()
    assert (await table_of(api, admin_token, first, "w.csv", STATISTICS))["statistics"] == stats
    assert (await table_of(api, admin_token, second, "copy.csv", STATISTICS))["statistics"] == stats
    assert analyses() == again


async def test_a_malformed_file_is_an_invalid_error_with_its_line(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    ragged = b"a,b,c\n1,2,3\n4,5,6\n7,8\n"
    dataset_id = await dataset_with(api, client, admin_token, "bad", {"bad.csv": ragged})
    body = await api.post(FILE_TABLE, {"id": dataset_id, "path": "bad.csv"}, token=admin_token)
    assert body["data"]["dataset"]["file"]["table"] is None
    (error,) = body["errors"]
    assert error["message"].startswith("bad.csv: ")
    assert error["extensions"]["code"] == "INVALID"
    assert error["extensions"]["line"] == 4
    before = analyses()
    again = await api.post(FILE_TABLE, {"id": dataset_id, "path": "bad.csv"}, token=admin_token)
    assert again["errors"][0]["message"] == error["message"]
    assert analyses() == before


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty"), (b"a,b\n", "header"), (b"PAR1 not really", "Parquet")],
)
async def test_every_malformed_case_is_refused_in_words(
    api: Api, client: httpx.AsyncClient, admin_token: str, content: bytes, words: str
) -> None:
    name = "t.parquet" if words == "Parquet" else "t.csv"
    dataset_id = await dataset_with(api, client, admin_token, "bad", {name: content})
    body = await api.post(FILE_TABLE, {"id": dataset_id, "path": name}, token=admin_token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    assert words.lower() in body["errors"][0]["message"].lower()


async def test_quality_percentiles_and_chi_square_through_graphql(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "fit", {"w.csv": CSV})
    query = """query($id: ID!) { dataset(id: $id) { file(path: "w.csv") { table {
      quality { overallScore checks { name passed details } }
      percentiles(columns: ["temp"], q: [0, 0.5, 1]) { column values { q value } }
      chiSquareTest(column: "city") { statistic degreesOfFreedom pValue observed expected }
    } } } }"""
    table = (await api.data(query, {"id": dataset_id}, token=admin_token))["dataset"]["file"][
        "table"
    ]
    # One missing cell in sixteen (6.25%) costs 30 x 0.0625 points; nothing else is found.
    assert table["quality"]["overallScore"] == pytest.approx(100 - 30 * 0.0625, abs=0.01)
    passed = {check["name"]: check["passed"] for check in table["quality"]["checks"]}
    assert passed["missing_values"] is False
    assert passed["duplicate_rows"] is True
    assert {check["name"] for check in table["quality"]["checks"]} >= {
        "missing_values",
        "duplicate_rows",
        "outliers",
    }
    assert table["percentiles"] == [
        {
            "column": "temp",
            "values": [
                {"q": 0.0, "value": 3.5},
                {"q": 0.5, "value": 4.5},
                {"q": 1.0, "value": 22.0},
            ],
        }
    ]
    chi = table["chiSquareTest"]
    assert chi["observed"] == {"Cairo": 1, "Lima": 1, "Oslo": 2}
    assert chi["degreesOfFreedom"] == 2
    assert chi["statistic"] == pytest.approx(0.5)


async def test_bad_arguments_name_the_argument(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "args", {"w.csv": CSV})
    query = """query($id: ID!, $expected: JSON) { dataset(id: $id) { file(path: "w.csv") {
      table { chiSquareTest(column: "city", expected: $expected) { statistic } } } } }"""
    expected = {"Oslo": 0.5, "Lima": 0.3, "Cairo": 0.3}
    body = await api.post(query, {"id": dataset_id, "expected": expected}, token=admin_token)
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "argument": "expected"}
    unknown = """query($id: ID!) { dataset(id: $id) { file(path: "w.csv") {
      table { percentiles(columns: ["nope"], q: [0.5]) { column } } } } }"""
    body = await api.post(unknown, {"id": dataset_id}, token=admin_token)
    assert body["errors"][0]["extensions"]["argument"] == "columns"
    preview = """query($id: ID!) { dataset(id: $id) { file(path: "w.csv") {
      table { preview(limit: 101) } } } }"""
    body = await api.post(preview, {"id": dataset_id}, token=admin_token)
    assert body["errors"][0]["message"] == "`limit` must be between 0 and 100"


async def test_a_version_table_is_its_only_table_or_the_one_at_path(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(
        api, client, admin_token, "versioned", {"w.csv": CSV, "readme.md": b"# hi"}
    )
    v1 = await snapshot(api, admin_token, dataset_id)
    data = await api.data(VERSION_TABLE, {"id": v1["id"]}, token=admin_token)
    assert data["version"]["table"] == {"path": "w.csv", "rowCount": 4}
    await put(client, admin_token, dataset_id, "more.tsv", b"a\tb\n1\t2\n")
    v2 = await snapshot(api, admin_token, dataset_id)
    body = await api.post(VERSION_TABLE, {"id": v2["id"]}, token=admin_token)
    assert "pick one with `path`" in body["errors"][0]["message"]
    picked = await api.data(VERSION_TABLE, {"id": v2["id"], "path": "more.tsv"}, token=admin_token)
    assert picked["version"]["table"] == {"path": "more.tsv", "rowCount": 1}
    none = await api.data(VERSION_TABLE, {"id": v2["id"], "path": "readme.md"}, token=admin_token)
    assert none["version"]["table"] is None


async def test_compare_reports_schema_changes_and_drift_against_a_baseline(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await new_dataset(api, admin_token, "drift")
    old = "x,kind\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(100))
    await put(client, admin_token, dataset_id, "d.csv", old.encode())
    v1 = await snapshot(api, admin_token, dataset_id)
    new = "x,kind,extra\n" + "".join(f"{i + 50},{'abc'[i % 3]},1\n" for i in range(120))
    await put(client, admin_token, dataset_id, "d.csv", new.encode())
    v2 = await snapshot(api, admin_token, dataset_id)
    query = """query($id: ID!, $baseline: ID!) { version(id: $id) { table {
      columns { name dtype } compare(baseline: $baseline) {
      summary { baselineRows rows rowsDiff columnsAdded columnsRemoved columnsTypeChanged }
      columns { name kind baselineMean mean meanShiftPct psi shiftLevel newCategories
        vanishedCategories } } } } }"""
    table = (await api.data(query, {"id": v2["id"], "baseline": v1["id"]}, token=admin_token))[
        "version"
    ]["table"]
    assert table["columns"][1] == {"name": "kind", "dtype": "category"}
    result = table["compare"]
    assert result["summary"] == {
        "baselineRows": 100,
        "rows": 120,
        "rowsDiff": 20,
        "columnsAdded": ["extra"],
        "columnsRemoved": [],
        "columnsTypeChanged": [],
    }
    by_name = {column["name"]: column for column in result["columns"]}
    assert by_name["x"]["kind"] == "NUMERIC"
    assert by_name["x"]["baselineMean"] == pytest.approx(49.5)
    assert by_name["x"]["mean"] == pytest.approx(109.5)
    assert by_name["x"]["shiftLevel"] == "HIGH"
    assert by_name["kind"]["kind"] == "CATEGORICAL"
    assert by_name["kind"]["newCategories"] == ["c"]


async def test_a_version_table_exports_as_csv_parquet_and_xlsx(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "export", {"w.csv": CSV})
    version = await snapshot(api, admin_token, dataset_id)
    headers = {"Authorization": f"Bearer {admin_token}"}
    url = f"/versions/{version['id']}/export"

    as_csv = await client.get(url, params={"format": "csv"}, headers=headers)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="w-v1.csv"' in as_csv.headers["content-disposition"]
    lines = as_csv.text.splitlines()
    assert lines[0] == '"city","temp","rain","when"'
    assert len(lines) == 5

    as_parquet = await client.get(url, params={"format": "parquet"}, headers=headers)
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.num_rows == 4
    assert table.column("city").to_pylist() == ["Oslo", "Lima", "Oslo", "Cairo"]

    as_xlsx = await client.get(url, params={"format": "xlsx"}, headers=headers)
    (sheet,) = openpyxl.load_workbook(io.BytesIO(as_xlsx.content), read_only=True).worksheets
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("city", "temp", "rain", "when")
    assert rows[2][:3] == ("Lima", 22.0, False)
    assert len(rows) == 5


async def test_exports_refuse_what_they_cannot_serve(
    api: Api, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "refuse", {"w.csv": CSV})
    version = await snapshot(api, admin_token, dataset_id)
    headers = {"Authorization": f"Bearer {admin_token}"}
    url = f"/versions/{version['id']}/export"
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 4)  # a header and three rows fit
    too_large = await client.get(url, params={"format": "xlsx"}, headers=headers)
    assert too_large.status_code == 413
    assert too_large.text.startswith("TOO_LARGE:")
    assert (await client.get(url, params={"format": "ods"}, headers=headers)).status_code == 400
    assert (await client.get(url)).status_code == 404
    missing = await client.get(url, params={"path": "nope.csv"}, headers=headers)
    assert missing.status_code == 404


async def test_parquet_uploads_are_tables_too(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": [1, 2, None], "s": ["a", "b", "c"]}), buffer)
    dataset_id = await dataset_with(
        api, client, admin_token, "pq", {"t.parquet": buffer.getvalue()}
    )
    table = await table_of(api, admin_token, dataset_id, "t.parquet", FILE_TABLE)
    assert table["rowCount"] == 3
    assert table["columns"][0] == {"name": "n", "dtype": "int64", "nullable": True}


async def test_a_page_of_files_reads_their_cached_tables_in_a_constant_number_of_queries(
    api: Api, client: httpx.AsyncClient, admin_token: str, count_queries: QueryCounter
) -> None:
    query = """query($id: ID!) { dataset(id: $id) { files(first: 50) {
      edges { node { path table { rowCount columnCount } } } } } }"""

    async def statements(count: int) -> int:
        files = {f"t{i}.csv": f"a,b\n{i},{count}\n".encode() for i in range(count)}
        dataset_id = await dataset_with(api, client, admin_token, f"many-{count}", files)
        await api.data(query, {"id": dataset_id}, token=admin_token)  # computes each schema
        count_queries.statements.clear()
        data = await api.data(query, {"id": dataset_id}, token=admin_token)
        assert [e["node"]["table"]["rowCount"] for e in data["dataset"]["files"]["edges"]] == [
            1
        ] * count
        return len(count_queries.statements)

    assert await statements(2) == await statements(6)
