"""Tables that are awkward to read or write: a UTF-8 byte-order mark before Latin-1 bytes,
and Parquet columns a CSV cell cannot hold as such (structs, lists, binary)."""

from __future__ import annotations

import base64
import csv
import io
import json

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import Api, dataset_with, snapshot

pytestmark = pytest.mark.anyio

TABLE = """query($id: ID!) { dataset(id: $id) { file(path: "t.csv") { table { rowCount } } } }"""
BOM_THEN_LATIN_1 = b"\xef\xbb\xbfname,city\nJos\xe9,K\xf6ln\nAnna,Z\xfcrich\n"


async def test_a_byte_order_mark_before_latin_1_bytes_is_a_readable_table_error(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"t.csv": BOM_THEN_LATIN_1})

    body = await api.post(TABLE, {"id": dataset_id}, token=admin_token)

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID"
    assert "byte-order mark" in error["message"]
    assert "line 2" in error["message"]
    assert "0xe9" in error["message"]


async def test_the_export_of_a_byte_order_mark_before_latin_1_bytes_is_a_400(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"t.csv": BOM_THEN_LATIN_1})
    version = await snapshot(api, admin_token, dataset_id)

    response = await client.get(
        f"/versions/{version['id']}/export",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code == 400, response.text
    assert "byte-order mark" in response.text


def nested_parquet() -> bytes:
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "point": pa.array(
                [{"x": 1.5, "y": -2.0}, None], pa.struct([("x", pa.float64()), ("y", pa.float64())])
            ),
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "blob": pa.array([b"\x00\xff", b"hi"], pa.binary()),
            "counts": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


async def test_nested_and_binary_parquet_columns_export_to_csv_as_json_text(
    api: Api, client: httpx.AsyncClient, admin_token: str
) -> None:
    dataset_id = await dataset_with(api, client, admin_token, "d", {"t.parquet": nested_parquet()})
    version = await snapshot(api, admin_token, dataset_id)

    response = await client.get(
        f"/versions/{version['id']}/export",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["id"] for row in rows] == ["1", "2"]
    assert json.loads(rows[0]["point"]) == {"x": 1.5, "y": -2.0}
    assert rows[1]["point"] == ""
    assert [json.loads(row["tags"]) for row in rows] == [["a", "b"], []]
    assert [base64.b64decode(row["blob"]) for row in rows] == [b"\x00\xff", b"hi"]
    assert json.loads(rows[0]["counts"]) == [["k", 1]]
