"""Write the table the analytics benchmark reads: 10 M rows x 10 columns of Parquet.

Four float, three int and three string columns (50, 10 000 and 500 000 distinct values),
each with 1 to 5 % nulls, written one row group at a time so generating it stays small:

    python bench/analytics_data.py /tmp/quiver-bench/table.parquet --rows 10000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 1_000_000
STRING_CARDINALITIES = {"s50": 50, "s10k": 10_000, "s500k": 500_000}


def with_nulls(values: pa.Array, rng: np.random.Generator, share: float) -> pa.Array:
    mask = rng.random(len(values)) < share
    return pa.array(values.to_numpy(zero_copy_only=False), mask=mask, type=values.type)


def row_group(rng: np.random.Generator, rows: int) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "f_normal": pa.array(rng.normal(100.0, 15.0, rows)),
        "f_uniform": pa.array(rng.uniform(-1.0, 1.0, rows)),
        "f_lognormal": pa.array(rng.lognormal(0.0, 1.0, rows)),
        "f_exponential": pa.array(rng.exponential(3.0, rows)),
        "i_small": pa.array(rng.integers(0, 100, rows)),
        "i_large": pa.array(rng.integers(-(10**12), 10**12, rows)),
        "i_poisson": pa.array(rng.poisson(7.0, rows).astype(np.int64)),
    }
    for name, cardinality in STRING_CARDINALITIES.items():
        # Zipf-like skew so top values are not all ties.
        codes = np.minimum(rng.zipf(1.3, rows) - 1, cardinality - 1)
        codes = (
            codes + rng.integers(0, cardinality, rows) * (rng.random(rows) < 0.5)
        ) % cardinality
        labels = pa.array([f"{name}-value-{code}" for code in range(cardinality)])
        columns[name] = labels.take(pa.array(codes))
    shares = [0.01, 0.02, 0.03, 0.04, 0.05, 0.01, 0.02, 0.03, 0.04, 0.05]
    return pa.table(
        {
            name: with_nulls(array, rng, share)
            for (name, array), share in zip(columns.items(), shares, strict=True)
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    arguments = parser.parse_args()
    arguments.dest.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(arguments.seed)
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, arguments.rows, ROW_GROUP):
            table = row_group(rng, min(ROW_GROUP, arguments.rows - start))
            if writer is None:
                writer = pq.ParquetWriter(arguments.dest, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    print(f"wrote {arguments.rows} rows to {arguments.dest}")


if __name__ == "__main__":
    main()
