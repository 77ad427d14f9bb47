"""Keeping the warehouse's derived tables (``capture_rows``, ``daily_taxon_counts``) equal to their definitions.

A load replaces a partition of a source table (``tuboids``, ``classifications``). The rows of a derived table that
it can change are those whose key (``device``, ``tuboid_id``) appears in the partition's rows *before* the load
(a tuboid that disappears must lose its capture) or *after* it (a tuboid continued from yesterday gets today's
frames). Those keys are collected in a temporary table per derived table, the derived rows of those keys are
deleted and recomputed from the definition restricted to them (a ``SEMI JOIN``), and the keys of the rows that
changed are passed on to the tables derived from this one. All of it runs inside the load's transaction: an analyst
never sees a partition loaded and its captures not yet updated, and a crash keeps both as they were.

The cost of a load is that of the changed keys (one device-day's tuboids), not of the season; a full recomputation
happens only on ``rebuild``, when a table is new, or when its definition changed (stored in ``_derived_tables``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from stickypi_assets.storage.tables import DerivedTable

#: One row per derived table: the SQL its rows were computed with. A different definition in the code recomputes it.
STATE_TABLE = "_derived_tables"


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _changed(table: DerivedTable) -> str:
    return f"_changed_{table.name}"


def _scope(table: DerivedTable) -> str:
    return f'SEMI JOIN "{_changed(table)}" USING ({_quoted(table.key)})'


def _insert(con: duckdb.DuckDBPyConnection, table: DerivedTable, select: str) -> None:
    cols = _quoted(table.spec.column_names)
    con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM ({select}) AS derived')


def migrate(con: duckdb.DuckDBPyConnection, derived: Mapping[str, DerivedTable]) -> None:
    """Create the derived tables (replacing views of the same name from older versions) and recompute any whose
    definition is new or changed."""
    con.execute(f'CREATE TABLE IF NOT EXISTS "{STATE_TABLE}" (name VARCHAR PRIMARY KEY, definition VARCHAR)')
    stored = dict(con.execute(f'SELECT name, definition FROM "{STATE_TABLE}"').fetchall())
    for table in derived.values():
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
            [table.name],
        ).fetchone()
        if kind is not None and kind[0] == "VIEW":  # a view in a warehouse written by an older version
            con.execute(f'DROP VIEW "{table.name}"')
            stored.pop(table.name, None)
        con.execute(table.spec.ddl())
        if stored.get(table.name) != table.definition():
            recompute(con, table)


def recompute(con: duckdb.DuckDBPyConnection, table: DerivedTable) -> None:
    """Replace every row of ``table`` with its definition over the whole warehouse, in ``order_by`` order."""
    con.execute(f'DELETE FROM "{table.name}"')
    _insert(con, table, f"{table.select('')} ORDER BY {table.order_by}")
    con.execute(
        f'INSERT OR REPLACE INTO "{STATE_TABLE}" (name, definition) VALUES (?, ?)', [table.name, table.definition()]
    )


def recompute_from(con: duckdb.DuckDBPyConnection, derived: Mapping[str, DerivedTable], source: str) -> None:
    """Recompute, in order, every derived table that depends on ``source`` directly or through another one."""
    touched = {source}
    for table in derived.values():
        if touched & set(table.sources):
            recompute(con, table)
            touched.add(table.name)


class ChangeTracker:
    """Collects the keys a load changes, then updates the derived tables for exactly those keys.

    Use: ``note(source, from_sql)`` before the partition's ``DELETE`` and after its ``INSERT`` (the rows before and
    after), then ``apply()`` once, in the same transaction.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, derived: Mapping[str, DerivedTable]) -> None:
        self.con = con
        self.derived = derived
        self._open: set[str] = set()

    def _keys_table(self, table: DerivedTable) -> str:
        name = _changed(table)
        if table.name not in self._open:
            types = {c.name: c.duckdb_type for c in table.spec.columns}
            cols = ", ".join(f'"{k}" {types[k]}' for k in table.key)
            self.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" ({cols})')
            self._open.add(table.name)
        return name

    def note(self, source: str, from_sql: str, params: Sequence[object] = ()) -> None:
        """Record the keys of the source rows ``SELECT … {from_sql}`` for every table derived from ``source``."""
        for table in self.derived.values():
            if source in table.sources:
                self.con.execute(
                    f'INSERT INTO "{self._keys_table(table)}" SELECT DISTINCT {table.sources[source]} {from_sql}',
                    list(params),
                )

    def apply(self) -> None:
        """Delete and recompute the derived rows of the noted keys, table by table in dependency order."""
        for table in self.derived.values():
            if table.name not in self._open:
                continue
            keys = _changed(table)
            rows = f'FROM "{table.name}" {_scope(table)}'
            self.note(table.name, rows)  # the rows about to go: their keys change the tables derived from them
            match = " AND ".join(f'"{table.name}"."{k}" = "{keys}"."{k}"' for k in table.key)
            self.con.execute(f'DELETE FROM "{table.name}" USING "{keys}" WHERE {match}')
            _insert(self.con, table, table.select(_scope(table)))
            self.note(table.name, rows)  # and the rows that replaced them
        # temporary tables are transactional: on an error, the load's ROLLBACK removes them with the rest
        for name in self._open:
            self.con.execute(f'DROP TABLE "{_changed(self.derived[name])}"')
        self._open.clear()
