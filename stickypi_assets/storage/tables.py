"""Warehouse table schemas: one place that says which tables exist and what their columns mean.

Every partitioned table carries its partition keys (``device``, ``date``) so that re-materializing a
partition replaces exactly its rows. Adding a column here is a migration: the warehouse adds missing
columns on start (``ALTER TABLE ... ADD COLUMN``), existing rows get NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    arrow_type: pa.DataType
    description: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    description: str
    partition_columns: tuple[str, ...] = ("device", "date")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.duckdb_type}' for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}\n)'


_TS = pa.timestamp("us", tz="UTC")

IMAGES = TableSpec(
    name="images",
    description="One row per raw image object of a device-day, including unreadable ones (status 'error').",
    columns=(
        Column("device", "VARCHAR", pa.string(), "Sticky Pi device id (8 hex digits)"),
        Column("date", "DATE", pa.date32(), "UTC day of the partition"),
        Column("datetime", "TIMESTAMPTZ", _TS, "UTC capture time from the file name (NULL if unparseable)"),
        Column("object_key", "VARCHAR", pa.string(), "object-store key of the JPEG"),
        Column("md5", "VARCHAR", pa.string(), "md5 hex of the JPEG bytes"),
        Column("size_bytes", "BIGINT", pa.int64(), "object size in bytes"),
        Column("width", "INTEGER", pa.int32(), "pixels (NULL if undecodable)"),
        Column("height", "INTEGER", pa.int32(), "pixels (NULL if undecodable)"),
        Column("status", "VARCHAR", pa.string(), "'ok', 'error' or 'duplicate'"),
        Column("error", "VARCHAR", pa.string(), "why the image is not usable (NULL when ok)"),
        Column("temperature_c", "DOUBLE", pa.float64(), "device temperature from EXIF Make (NULL if absent)"),
        Column("humidity_pct", "DOUBLE", pa.float64(), "device relative humidity from EXIF Make"),
        Column("run_id", "VARCHAR", pa.string(), "run that wrote the row (NULL outside Dagster)"),
        Column("ingested_at", "TIMESTAMPTZ", _TS, "when the row was written"),
    ),
)

TABLES: dict[str, TableSpec] = {IMAGES.name: IMAGES}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {sorted(TABLES)}") from None
