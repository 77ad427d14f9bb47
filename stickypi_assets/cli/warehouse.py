"""``stickypi warehouse``: rebuild the DuckDB tables from their Parquet partitions, publish, and read queries."""

from __future__ import annotations

import argparse

from stickypi_assets.cli.common import add_command_group, warehouse


def _cmd_warehouse(args: argparse.Namespace) -> int:
    wh = warehouse()
    if args.action == "rebuild":
        for table, n in wh.rebuild().items():
            print(f"{table}: {n} rows reloaded from Parquet")
    elif args.action == "publish":
        print(f"published {wh.publish()}")
    else:
        df = wh.query(args.sql, published=not args.writer)
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
