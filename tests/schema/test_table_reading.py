"""Real-world CSV layouts read right, and read options that correct a wrong guess."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import Api, dataset_with, new_dataset, put, snapshot

pytestmark = pytest.mark.anyio

FILE_TABLE = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { rowCount columns { name dtype } preview(limit: 3)
    readOptions { delimiter header skipRows quote encoding nullValues dtypes } } } } }"""
FILE_TABLE_WITH = """query($id: ID!, $path: String!, $options: TableReadOptionsInput) {
  dataset(id: $id) { file(path: $path) {
    table(options: $options) { rowCount columns { name dtype } preview(limit: 3)
      readOptions { delimiter header skipRows dtypes nullValues } } } } }"""
VERSION_TABLE_WITH = """query($id: ID!, $path: String, $options: TableReadOptionsInput) {
  version(id: $id) { table(path: $path, options: $options) {
    rowCount columns { name dtype } readOptions { header } } } }"""
SET_OPTIONS = """mutation($input: SetTableReadOptionsInput!) { setTableReadOptions(input: $input) {
  file { path table { rowCount columns { name dtype } preview(limit: 3)
    readOptions { delimiter header skipRows quote encoding nullValues dtypes } } }
  userErrors { field message code } } }"""
QUALITY = """query($id: ID!, $path: String!) { dataset(id: $id) { file(path: $path) {
  table { columns { name dtype } quality { checks { name passed details } } } } } }"""

LINNERUD = b"Chins Situps Jumps\n5 162 60\n2 110 60\n12 101 101\n"
# The shape of scikit-learn's diabetes_data_raw: no header, values padded with runs of spaces.
DIABETES_RAW = (
    b"59 2 32.1 101.  157  93.2\n"
    b"48 1 21.6  87 183 103.2\n"
    b"72 2  30.5 93  156 93.6\n"
    b" 24 1 25.3 84 198 131.4 \n"
)
IRIS_WITH_HEADER = (
    b"3,4,setosa,versicolor,virginica\n"
    b"sepal length (cm),sepal width (cm),petal length (cm),petal width (cm),target\n"
    b"5.1,3.5,1.4,0.2,0\n"
    b"7.0,3.2,4.7,1.4,1\n"
    b"6.3,3.3,6.0,2.5,2\n"
)
IRIS_HEADERLESS = (
    b"3,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n6.3,3.3,6.0,2.5,2\n"
)
BREAST_CANCER = (
    b"2,5,malignant,benign\n17.99,10.38,122.8,1001.0,0.1184,0\n20.57,17.77,132.9,1326.0,0.08474,1\n"
)


async def read(api: Api, token: str, dataset_id: str, path: str) -> dict[str, Any]:
    data = await api.data(FILE_TABLE, {"id": dataset_id, "path": path}, token=token)
    table: dict[str, Any] = data["dataset"]["file"]["table"]
    return table


def layout(table: dict[str, Any]) -> list[tuple[str, str]]:
    return [(column["name"], column["dtype"]) for column in table["columns"]]


async def test_a_space_delimited_file_has_a_column_per_field(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "linnerud", {"ex.csv": LINNERUD})
    table = await read(api, admin_token, dataset_id, "ex.csv")
    assert layout(table) == [("Chins", "int64"), ("Situps", "int64"), ("Jumps", "int64")]
    assert table["rowCount"] == 3
    assert table["preview"][0] == {"Chins": 5, "Situps": 162, "Jumps": 60}
    assert table["readOptions"]["delimiter"] == "\\s+"
    assert table["readOptions"]["header"] is True


async def test_runs_of_spaces_of_any_length_are_one_delimiter(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "diab", {"raw.csv": DIABETES_RAW})
    table = await read(api, admin_token, dataset_id, "raw.csv")
    assert table["rowCount"] == 4
    assert layout(table) == [
        ("column_1", "int64"),
        ("column_2", "int64"),
        ("column_3", "float64"),
        ("column_4", "float64"),
        ("column_5", "int64"),
        ("column_6", "float64"),
    ]
    assert table["preview"][0] == {
        "column_1": 59,
        "column_2": 2,
        "column_3": 32.1,
        "column_4": 101.0,
        "column_5": 157,
        "column_6": 93.2,
    }
    assert table["readOptions"]["header"] is False


@pytest.mark.parametrize(
    ("content", "first"),
    [
        (b"day,sales\n2012/01/01,3\n2012/01/02,4\n2012/12/31,5\n", "2012-01-01"),
        (b"day;sales\n31.01.2012;3\n01.02.2012;4\n29.02.2012;5\n", "2012-01-31"),
        (b"day,sales\n12/31/2012,3\n01/02/2013,4\n02/28/2013,5\n", "2012-12-31"),
        (b"day,sales\n31/12/2012,3\n01/02/2013,4\n28/02/2013,5\n", "2012-12-31"),
        (
            b"day,sales\n2012/01/01 10:30:00,3\n2012/01/02 11:00:05,4\n2012/12/31 23:59:59,5\n",
            "2012-01-01T10:30:00",
        ),
        (
            b"day,sales\n31.01.2012 10:30,3\n01.02.2012 08:00,4\n2.3.2012 9:15,5\n",
            "2012-01-31T10:30:00",
        ),
    ],
)
async def test_common_date_layouts_are_datetimes(
    api: Api, client: httpx.AsyncClient, admin_token: str, content: bytes, first: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "dates", {"d.csv": content})
    table = await read(api, admin_token, dataset_id, "d.csv")
    assert layout(table) == [("day", "datetime64"), ("sales", "int64")]
    assert table["rowCount"] == 3
    assert table["preview"][0]["day"] == first


async def test_slash_dates_that_could_be_either_order_stay_text(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    content = b"day,sales\n01/02/2012,3\n03/04/2012,4\n05/06/2012,5\n"
    dataset_id = await dataset_with(api, client, admin_token, "ambiguous", {"d.csv": content})
    table = await read(api, admin_token, dataset_id, "d.csv")
    assert layout(table) == [("day", "object"), ("sales", "int64")]
    assert table["preview"][0]["day"] == "01/02/2012"


async def test_a_metadata_line_before_an_iris_header_is_skipped(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(
        api, client, admin_token, "iris", {"iris.csv": IRIS_WITH_HEADER}
    )
    table = await read(api, admin_token, dataset_id, "iris.csv")
    assert layout(table) == [
        ("sepal length (cm)", "float64"),
        ("sepal width (cm)", "float64"),
        ("petal length (cm)", "float64"),
        ("petal width (cm)", "float64"),
        ("target", "int64"),
    ]
    assert table["rowCount"] == 3
    assert table["preview"][2]["petal length (cm)"] == 6.0
    assert (table["readOptions"]["skipRows"], table["readOptions"]["header"]) == (1, True)


async def test_a_metadata_line_before_headerless_data_is_skipped(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    files = {"iris.csv": IRIS_HEADERLESS, "cancer.csv": BREAST_CANCER}
    dataset_id = await dataset_with(api, client, admin_token, "sk", files)
    iris = await read(api, admin_token, dataset_id, "iris.csv")
    assert [dtype for _, dtype in layout(iris)] == ["float64"] * 4 + ["int64"]
    assert iris["rowCount"] == 3
    assert iris["preview"][0] == {
        "column_1": 5.1,
        "column_2": 3.5,
        "column_3": 1.4,
        "column_4": 0.2,
        "column_5": 0,
    }
    cancer = await read(api, admin_token, dataset_id, "cancer.csv")
    assert cancer["rowCount"] == 2
    assert [dtype for _, dtype in layout(cancer)] == ["float64"] * 5 + ["int64"]
    assert cancer["readOptions"]["skipRows"] == 1


async def test_what_was_sniffed_is_shown(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    content = "name;city\nAnn;Zürich\nBo;Köln\n".encode("cp1252")
    dataset_id = await dataset_with(api, client, admin_token, "sniffed", {"p.csv": content})
    options = (await read(api, admin_token, dataset_id, "p.csv"))["readOptions"]
    assert options["delimiter"] == ";"
    assert options["header"] is True
    assert options["skipRows"] == 0
    assert options["quote"] == '"'
    assert options["encoding"] == "cp1252"
    assert "NA" in options["nullValues"]
    assert options["dtypes"] == {}


async def test_a_parquet_file_has_no_read_options(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2]}), sink)
    dataset_id = await dataset_with(api, client, admin_token, "pq", {"a.parquet": sink.getvalue()})
    table = await read(api, admin_token, dataset_id, "a.parquet")
    assert table["rowCount"] == 2
    assert table["readOptions"] is None


async def test_read_options_set_on_a_file_correct_the_guess_and_persist(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    # All text: the first row is taken for a header, and zip codes look like numbers.
    content = b"# exported 2026-01-01\nred,02134,-\nblue,10001,7\ngreen,94105,8\n"
    dataset_id = await dataset_with(api, client, admin_token, "fix", {"c.csv": content})
    guessed = await read(api, admin_token, dataset_id, "c.csv")
    assert guessed["readOptions"]["skipRows"] == 1

    options = {
        "header": False,
        "skipRows": 1,
        "nullValues": ["-"],
        "dtypes": {"column_2": "object", "column_3": "float64"},
    }
    payload = await api.mutate(
        SET_OPTIONS,
        {"input": {"datasetId": dataset_id, "path": "c.csv", "options": options}},
        token=admin_token,
    )
    table = payload["file"]["table"]
    assert layout(table) == [
        ("column_1", "object"),
        ("column_2", "object"),
        ("column_3", "float64"),
    ]
    assert table["rowCount"] == 3
    assert table["preview"][0] == {"column_1": "red", "column_2": "02134", "column_3": None}
    assert table["readOptions"]["header"] is False
    assert table["readOptions"]["nullValues"] == ["-"]
    assert table["readOptions"]["dtypes"] == {"column_2": "object", "column_3": "float64"}

    # Read again later: the options are kept with the file.
    again = await read(api, admin_token, dataset_id, "c.csv")
    assert again["preview"] == table["preview"]

    # Clearing them goes back to the guess (not a stale result of the options).
    cleared = await api.mutate(
        SET_OPTIONS,
        {"input": {"datasetId": dataset_id, "path": "c.csv", "options": None}},
        token=admin_token,
    )
    assert cleared["file"]["table"]["preview"] == guessed["preview"]
    assert cleared["file"]["table"]["readOptions"] == guessed["readOptions"]


async def test_options_given_where_a_table_is_read_win_over_the_guess(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    content = b"red,blue\ngreen,yellow\ncyan,black\n"
    dataset_id = await dataset_with(api, client, admin_token, "args", {"c.csv": content})
    guessed = await read(api, admin_token, dataset_id, "c.csv")
    assert guessed["rowCount"] == 2

    variables = {"id": dataset_id, "path": "c.csv", "options": {"header": False}}
    data = await api.data(FILE_TABLE_WITH, variables, token=admin_token)
    table = data["dataset"]["file"]["table"]
    assert table["rowCount"] == 3
    assert table["preview"][0] == {"column_1": "red", "column_2": "blue"}
    assert table["readOptions"]["header"] is False

    version = await snapshot(api, admin_token, dataset_id)
    variables = {"id": version["id"], "path": "c.csv", "options": {"header": False}}
    data = await api.data(VERSION_TABLE_WITH, variables, token=admin_token)
    assert data["version"]["table"]["rowCount"] == 3
    assert data["version"]["table"]["readOptions"] == {"header": False}
    plain = await api.data(VERSION_TABLE_WITH, {"id": version["id"]}, token=admin_token)
    assert plain["version"]["table"]["rowCount"] == 2


async def test_a_dtype_override_the_values_do_not_fit_names_the_line(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    content = b"a,b\n1,x\n2,y\n"
    dataset_id = await dataset_with(api, client, admin_token, "misfit", {"c.csv": content})
    variables = {"id": dataset_id, "path": "c.csv", "options": {"dtypes": {"b": "int64"}}}
    body = await api.post(FILE_TABLE_WITH, variables, token=admin_token)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID"
    assert error["extensions"]["line"] == 2
    assert "b" in error["message"]
    assert "int64" in error["message"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"delimiter": ";;"}, "delimiter"),
        ({"quote": "ab"}, "quote"),
        ({"encoding": "klingon-8"}, "encoding"),
        ({"skipRows": -1}, "skipRows"),
        ({"dtypes": {"a": "complex128"}}, "dtypes"),
        ({"dtypes": ["a"]}, "dtypes"),
        ({"nullValues": ["x"] * 101}, "nullValues"),
    ],
)
async def test_bad_read_options_are_refused_with_the_field(
    api: Api, client: httpx.AsyncClient, admin_token: str, options: dict[str, Any], field: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "bad", {"c.csv": b"a,b\n1,2\n"})
    data = await api.data(
        SET_OPTIONS,
        {"input": {"datasetId": dataset_id, "path": "c.csv", "options": options}},
        token=admin_token,
    )
    payload = data["setTableReadOptions"]
    assert payload["file"] is None
    assert payload["userErrors"][0]["field"] == ["input", "options", field]
    assert payload["userErrors"][0]["code"] == "INVALID"

    variables = {"id": dataset_id, "path": "c.csv", "options": options}
    body = await api.post(FILE_TABLE_WITH, variables, token=admin_token)
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "argument": f"options.{field}"}


async def test_read_options_need_a_table_and_a_writer(
    api: Api, client: httpx.AsyncClient, admin_token: str, make_user: Any
) -> None:
    dataset_id = await new_dataset(api, admin_token, "owned")
    await put(client, admin_token, dataset_id, "notes.txt", b"hello")
    await put(client, admin_token, dataset_id, "c.csv", b"a,b\n1,2\n")

    async def refusal(path: str, token: str) -> dict[str, Any]:
        variables = {"input": {"datasetId": dataset_id, "path": path, "options": {"header": False}}}
        data = await api.data(SET_OPTIONS, variables, token=token)
        error: dict[str, Any] = data["setTableReadOptions"]["userErrors"][0]
        return error

    assert (await refusal("notes.txt", admin_token))["code"] == "INVALID"
    assert (await refusal("missing.csv", admin_token))["code"] == "NOT_FOUND"
    stranger = await make_user("stranger")
    assert (await refusal("c.csv", stranger.token))["code"] == "NOT_FOUND"


async def test_date_columns_are_not_identifiers(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    # Month and day both 12 or less: the order is unknown, so the column stays text.
    rows = [f"{month:02d}/{day:02d}/2012,{day}" for month in (1, 2) for day in range(1, 13)]
    slashes = ("when,n\n" + "\n".join(rows) + "\n").encode()
    iso = ("when,n\n" + "\n".join(f"2012-01-{d:02d}T10:00:00,{d}" for d in range(1, 26))).encode()
    files = {"ambiguous.csv": slashes, "iso.csv": iso}
    dataset_id = await dataset_with(api, client, admin_token, "dated", files)
    for path, dtype in (("ambiguous.csv", "object"), ("iso.csv", "datetime64")):
        variables = {"id": dataset_id, "path": path}
        table = (await api.data(QUALITY, variables, token=admin_token))["dataset"]["file"]["table"]
        assert table["columns"][0] == {"name": "when", "dtype": dtype}
        checks = {check["name"]: check for check in table["quality"]["checks"]}
        assert checks["high_cardinality_identifiers"]["passed"] is True, path
        assert checks["high_cardinality_identifiers"]["details"] == (
            "no column looks like an identifier"
        )
