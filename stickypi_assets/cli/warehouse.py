"""``stickypi warehouse``: rebuild the DuckDB tables from their Parquet partitions, publish, and read queries."""

from __future__ import annotations

import argparse
import re

import duckdb
import pandas as pd

from stickypi_assets.cli.common import DataError, add_command_group, warehouse
from stickypi_assets.storage.warehouse import Warehouse

#: DuckDB's integer types (and decimals without a fraction), whose values print as integers.
_INTEGER_TYPE = re.compile(r"(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DECIMAL\(\d+,\s*0\))", re.IGNORECASE)


#: The largest integer a float64 holds exactly: beyond it, pandas already rounded the value, so it stays a float.
_EXACT = 2**53


def _as_integers(column: pd.Series) -> pd.Series:
    """An integer column that pandas read as floats (``HUGEINT``: ``sum()`` of integers) or decimals, as
    nullable integers (NULL prints ``<NA>``); unchanged if a value is beyond what a float holds exactly."""
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().ne(column.isna()).any() or values.abs().gt(_EXACT).any():
        return column
    return values.astype("Int64")


def integers_as_integers(wh: Warehouse, sql: str, df: pd.DataFrame, *, published: bool) -> pd.DataFrame:
    """``df`` (the result of ``sql``) with every column of an integer SQL type printed as an integer.

    pandas reads DuckDB's ``HUGEINT`` (what ``sum()`` of integers returns) as ``float64``, so a count printed
    ``47.0``. The SQL types come from ``DESCRIBE <sql>`` (binding only, nothing runs twice); a statement DuckDB
    cannot describe (``SHOW``, ``PRAGMA``, several statements) is printed as it came.
    """
    try:
        types = wh.query(f"DESCRIBE {sql.strip().rstrip(';')}", published=published)
    except duckdb.Error:
        return df
    if list(types.columns[:2]) != ["column_name", "column_type"] or list(types["column_name"]) != list(df.columns):
        return df
    out = df.copy()
    for i, sql_type in enumerate(types["column_type"]):
        if _INTEGER_TYPE.fullmatch(str(sql_type)) and not pd.api.types.is_integer_dtype(df.iloc[:, i]):
            out.isetitem(i, _as_integers(df.iloc[:, i]))
    return out


def _query(wh: Warehouse, sql: str, *, published: bool) -> pd.DataFrame:
    try:
        df = wh.query(sql, published=published)
    except duckdb.Error as exc:
        hint = " (`stickypi warehouse sql` runs read queries only)" if "read-only" in str(exc) else ""
        raise DataError(f"query failed: {exc}{hint}") from exc
    return integers_as_integers(wh, sql, df, published=published)


def _cmd_warehouse(args: argparse.Namespace) -> int:
    wh = warehouse()
    if args.action == "rebuild":
        for table, n in wh.rebuild().items():
            print(f"{table}: {n} rows reloaded from Parquet")
    elif args.action == "publish":
        print(f"published {wh.publish()}")
    else:
        df = _query(wh, args.sql, published=not args.writer)
        print(df.to_string(index=False) if len(df) else "(no rows)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``warehouse`` (``rebuild``, ``publish``, ``sql``) on the main CLI's sub-parsers."""
    wh, wh_sub = add_command_group(subparsers, "warehouse", "DuckDB warehouse maintenance and queries", dest="action")
    wh_sub.add_parser("rebuild", help="reload every table from its Parquet partitions in the object store")
    wh_sub.add_parser("publish", help="refresh the analysts' read copy")
    sql = wh_sub.add_parser("sql", help="run a read query (on the published copy by default)")
    sql.add_argument("sql", help="SQL text, e.g. \"SELECT device, count(*) FROM images GROUP BY ALL\"")
    sql.add_argument("--writer", action="store_true",
                     help="query the writer's file (read-only, under its lock) instead")  # fmt: skip
    wh.set_defaults(func=_cmd_warehouse)
    return wh
