"""What the client's methods for tables do (schema, preview, statistics, quality, drift,
exports, pandas and Arrow), as plans (see quiver.client.steps) both clients run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from quiver.client import operations as ops
from quiver.client.errors import QuiverError
from quiver.client.steps import Offload, Plan, Request, Save
from quiver.client.transport import raise_for_status
from quiver.client.types import Json, QualityReport, Table, TableStatistics

if TYPE_CHECKING:
    import httpx
    import pandas
    import pyarrow

    from quiver.client.plans import Plans

EXPORT_FORMATS = ("csv", "xlsx", "parquet")


def table(plans: Plans, reference: str, path: str | None = None) -> Plan[Table]:
    """The schema of a version's table (``name@vN``; default: the latest version)."""
    found: Table = yield ops.table((yield from plans.version(reference)).id, path)
    return found


def preview(
    plans: Plans, reference: str, path: str | None = None, *, limit: int = 20
) -> Plan[list[Json]]:
    version = yield from plans.version(reference)
    rows: list[Json] = yield ops.preview(version.id, path, limit)
    return rows


def statistics(
    plans: Plans, reference: str, path: str | None = None, *, bins: int = 10, top_k: int = 10
) -> Plan[TableStatistics]:
    version = yield from plans.version(reference)
    found: TableStatistics = yield ops.statistics(version.id, path, bins, top_k)
    return found


def quality(plans: Plans, reference: str, path: str | None = None) -> Plan[QualityReport]:
    found: QualityReport = yield ops.quality((yield from plans.version(reference)).id, path)
    return found


def compare(plans: Plans, reference: str, baseline: int, path: str | None = None) -> Plan[Json]:
    """Schema changes and drift of the table against version ``baseline``'s."""
    baseline_id = (yield from plans.version(reference, baseline)).id
    version = yield from plans.version(reference)
    found: Json = yield ops.compare(version.id, path, baseline_id)
    return found


def export(
    plans: Plans,
    reference: str,
    destination: str | Path,
    *,
    format: str = "parquet",
    path: str | None = None,
) -> Plan[Path]:
    """Write a version's table as CSV, XLSX or Parquet."""
    url, params = yield from _export_url(plans, reference, format, path)
    saved: Path = yield Save(url, Path(destination), params)
    return saved


def export_bytes(
    plans: Plans, reference: str, *, format: str = "parquet", path: str | None = None
) -> Plan[bytes]:
    """A version's table as CSV, XLSX or Parquet bytes."""
    url, params = yield from _export_url(plans, reference, format, path)
    response: httpx.Response = yield Request("GET", url, {"params": params})
    raise_for_status(response)
    return response.content


def _export_url(
    plans: Plans, reference: str, format: str, path: str | None
) -> Plan[tuple[str, dict[str, str]]]:
    if format not in EXPORT_FORMATS:
        raise QuiverError(f"format must be one of {', '.join(EXPORT_FORMATS)}", code="INVALID")
    version = yield from plans.version(reference)
    params = {"format": format} | ({"path": path} if path else {})
    return f"/versions/{version.id}/export", params


def to_arrow(plans: Plans, reference: str, path: str | None = None) -> Plan[pyarrow.Table]:
    """A version's table as a pyarrow Table (through its Parquet export)."""
    import pyarrow.parquet as pq

    data = yield from export_bytes(plans, reference, path=path)
    table: pyarrow.Table = yield Offload(lambda: pq.read_table(io.BytesIO(data)))
    return table


def to_pandas(plans: Plans, reference: str, path: str | None = None) -> Plan[pandas.DataFrame]:
    table = yield from to_arrow(plans, reference, path)
    frame: pandas.DataFrame = yield Offload(table.to_pandas)
    return frame
