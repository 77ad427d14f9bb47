"""DuckDB warehouse with Parquet partitions in the object store as the source of truth.

Why this shape (see ``../shared/docs/DAGSTER_NOTES.md``): DuckDB allows one process at a time on a file,
and any open connection, even read-only, blocks writers. So:

1. A partition's rows are first written as one Parquet object,
   ``warehouse/<table>/device=<device>/date=<YYYY-MM-DD>/part.parquet`` (atomic put). That object is the
   source of truth: readable by any engine, and the DuckDB file can always be rebuilt from it
   (:meth:`Warehouse.rebuild`).
2. Loading into DuckDB happens under an exclusive inter-process file lock (``<db>.lock``, ``flock``), so
   writers from several runs, processes or threads queue instead of failing on DuckDB's own lock. Each
   load replaces the partition's rows with ``DELETE`` + ``INSERT`` in one transaction: idempotent, and a
   crash leaves the previous rows intact.
3. Analysts never open the writer's file: :meth:`Warehouse.publish` checkpoints it and atomically swaps a
   copy into ``published_path``. An analyst session on the published copy keeps the inode it opened and
   never blocks a run.

The lock is finer-grained than a Dagster concurrency pool (only the short load is serialized, not the
image decoding that precedes it) and also protects the CLI and notebooks, which do not run through
Dagster.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stickypi_assets.storage import derived
from stickypi_assets.storage.keys import PartitionKey, partition_parquet_key, table_prefix, whole_table_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.tables import DERIVED_TABLES, TABLES, DerivedTable, TableSpec, analyst_views

log = logging.getLogger(__name__)
#: The published copy is written as ``.tmp-<pid>-<name>`` beside it, then renamed over it.
PUBLISH_TMP_PREFIX = ".tmp-"


class WarehouseError(RuntimeError):
    """A warehouse operation could not complete; the message says what to do."""


@dataclass(frozen=True)
class WriteResult:
    table: str
    partition: PartitionKey
    n_rows: int
    parquet_key: str


def conform(spec: TableSpec, rows: pd.DataFrame | pa.Table, partition: PartitionKey | None) -> pa.Table:
    """Cast rows to the table's Arrow schema, filling and checking the partition columns.

    Rows that claim another device or date are a bug in the caller, not data to silently relabel.
    """
    df = rows.to_pandas() if isinstance(rows, pa.Table) else rows.copy()
    unknown = set(df.columns) - set(spec.column_names)
    if unknown:
        raise WarehouseError(f"table {spec.name!r} has no columns {sorted(unknown)}")
    keys = (("device", partition.device), ("date", partition.date)) if partition is not None else ()
    for col, value in keys:
        if col not in df.columns:
            df[col] = value
        elif len(df) and not (df[col] == value).all():
            others = sorted({str(v) for v in df[col] if v != value})
            raise WarehouseError(f"rows for partition {partition} contain {col} values {others}")
    for col in spec.column_names:
        if col not in df.columns:
            df[col] = None
    arrays = []
    for field in spec.arrow_schema:
        col = df[field.name]
        if col.isna().all():  # all-NULL (or empty) columns carry no type information: use the schema's
            arrays.append(pa.nulls(len(col), field.type))
            continue
        try:
            arrays.append(pa.array(col, type=field.type, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise WarehouseError(
                f"column {field.name!r} of table {spec.name!r} does not convert to {field.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema)


class Warehouse:
    """The analysts' DuckDB tables, loaded from per-partition Parquet objects."""

    def __init__(
        self,
        db_path: str | Path,
        store: ObjectStore,
        *,
        published_path: str | Path | None = None,
        tables: Mapping[str, TableSpec] = TABLES,
        lock_timeout_s: float = 600.0,
        views: Mapping[str, str] | None = None,
        px_per_mm: float | None = None,
        derived_tables: Mapping[str, DerivedTable] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.published_path = Path(published_path) if published_path else None
        self.store = store
        self.tables = dict(tables)
        #: Tables computed from the others and kept current by every load (default: the captures tables).
        self.derived = (
            dict(derived_tables) if derived_tables is not None else (DERIVED_TABLES if tables is TABLES else {})
        )
        #: Analysts' views (default: :func:`analyst_views` over the derived tables), recreated on each start.
        default_views = analyst_views(px_per_mm) if self.derived == DERIVED_TABLES else {}
        self.views = dict(views) if views is not None else default_views
        self.lock_timeout_s = lock_timeout_s
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._defer_depth = 0
        self._publish_pending = False

    # -- locking and schema -------------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.db_path.with_name(self.db_path.name + ".lock")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the inter-process writer lock (flock on a side file; released if the process dies)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarehouseError(
                            f"waited {self.lock_timeout_s:.0f} s for the warehouse writer lock {self.lock_path}; "
                            "another load is stuck (check running stickypi/dagster processes)"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the warehouse file, held under the writer lock, schema migrated."""
        with self._exclusive():
            try:
                con = duckdb.connect(str(self.db_path))
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"cannot open {self.db_path} for writing: {exc}. Another program (an analyst session?) has "
                    f"the writer's file open; analysts should use the published copy {self.published_path}"
                ) from exc
            try:
                self._migrate(con)
                yield con
            finally:
                con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create missing tables and add missing columns (new columns are NULL for old rows)."""
        for spec in self.tables.values():
            con.execute(spec.ddl())
            existing = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [spec.name]
                ).fetchall()
            }
            for col in spec.columns:
                if col.name not in existing:
                    con.execute(f'ALTER TABLE "{spec.name}" ADD COLUMN "{col.name}" {col.duckdb_type}')
        derived.migrate(con, self.derived)
        for name, select in self.views.items():
            con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')

    def spec(self, table: str) -> TableSpec:
        try:
            return self.tables[table]
        except KeyError:
            raise WarehouseError(f"unknown table {table!r}; known: {sorted(self.tables)}") from None

    # -- writing --------------------------------------------------------------------------------------------

    def write_partition(
        self,
        table: str,
        partition: PartitionKey,
        rows: pd.DataFrame | pa.Table,
        *,
        publish: bool = True,
    ) -> WriteResult:
        """Replace one partition's rows: Parquet object first (source of truth), then DuckDB, then publish."""
        spec = self.spec(table)
        arrow = conform(spec, rows, partition)
        buf = io.BytesIO()
        pq.write_table(arrow, buf, compression="zstd")
        key = partition_parquet_key(table, partition)
        self.store.put_bytes(key, buf.getvalue(), content_type="application/vnd.apache.parquet")
        self._load(spec, [(partition, arrow)])
        if publish:
            self.publish()
        return WriteResult(table=table, partition=partition, n_rows=arrow.num_rows, parquet_key=key)

    def replace_table(self, table: str, rows: pd.DataFrame | pa.Table, *, publish: bool = True) -> int:
        """Replace every row of an unpartitioned table (Parquet object first, then DuckDB, then publish)."""
        spec = self.spec(table)
        if spec.partition_columns:
            raise WarehouseError(f"table {table!r} is partitioned by {spec.partition_columns}; use write_partition")
        arrow = conform(spec, rows, None)
        buf = io.BytesIO()
        pq.write_table(arrow, buf, compression="zstd")
        self.store.put_bytes(whole_table_key(table), buf.getvalue(), content_type="application/vnd.apache.parquet")
        self._load(spec, [(None, arrow)], replace_all=True)
        if publish:
            self.publish()
        return arrow.num_rows

    def _load(
        self, spec: TableSpec, parts: list[tuple[PartitionKey | None, pa.Table]], *, replace_all: bool = False
    ) -> None:
        """Replace rows in one transaction, the derived tables updated with them (only the rows they touch)."""
        cols = ", ".join(f'"{c}"' for c in spec.column_names)
        with self.writer() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                changes = derived.ChangeTracker(con, self.derived)
                if replace_all:
                    con.execute(f'DELETE FROM "{spec.name}"')
                for partition, arrow in parts:
                    if not replace_all and partition is not None:
                        where = f'FROM "{spec.name}" WHERE device = ? AND "date" = ?'
                        changes.note(spec.name, where, [partition.device, partition.date])
                        con.execute(f"DELETE {where}", [partition.device, partition.date])
                    con.register("incoming_rows", arrow)
                    con.execute(f'INSERT INTO "{spec.name}" ({cols}) SELECT {cols} FROM incoming_rows')
                    if not replace_all:
                        changes.note(spec.name, "FROM incoming_rows")
                    con.unregister("incoming_rows")
                if replace_all:
                    derived.recompute_from(con, self.derived, spec.name)
                else:
                    changes.apply()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def load_partition(self, table: str, partition: PartitionKey, *, publish: bool = True) -> int:
        """(Re)load one partition from its Parquet object (e.g. after a writer crashed before loading)."""
        spec = self.spec(table)
        arrow = self._read_parquet(partition_parquet_key(table, partition))
        self._load(spec, [(partition, arrow)])
        if publish:
            self.publish()
        return arrow.num_rows

    def partitions(self, table: str) -> list[PartitionKey]:
        """Partitions that have a Parquet object, from the object-store listing."""
        prefix = table_prefix(table)
        found = []
        for info in self.store.list(prefix):
            parts = info.key[len(prefix) :].split("/")
            if len(parts) == 3 and parts[0].startswith("device=") and parts[1].startswith("date="):
                try:
                    found.append(PartitionKey(parts[0][7:], date.fromisoformat(parts[1][5:])))
                except (ValueError, TypeError) as exc:  # written by another tool: skipped, and said so
                    log.warning("table %s: skipped %s, not a partition object (%s)", table, info.key, exc)
        return sorted(found)

    def rebuild(self, tables: list[str] | None = None, *, publish: bool = True) -> dict[str, int]:
        """Rebuild DuckDB tables from the Parquet objects (disaster recovery, or a new warehouse file)."""
        counts: dict[str, int] = {}
        for name in tables or list(self.tables):
            spec = self.spec(name)
            if not spec.partition_columns:
                key = whole_table_key(name)
                parts = [(None, self._read_parquet(key))] if self.store.exists(key) else []
            else:
                parts = [(p, self._read_parquet(partition_parquet_key(name, p))) for p in self.partitions(name)]
            self._load(spec, parts, replace_all=True)
            counts[name] = sum(a.num_rows for _, a in parts)
        if publish:
            self.publish()
        return counts

    def read_partition_parquet(self, table: str, partition: PartitionKey) -> pd.DataFrame:
        """A partition's rows from its Parquet object: no DuckDB lock needed (what downstream assets read)."""
        self.spec(table)
        key = partition_parquet_key(table, partition)
        if not self.store.exists(key):
            raise WarehouseError(f"partition {partition} of table {table!r} has not been written yet ({key})")
        return self._read_parquet(key).to_pandas()

    def _read_parquet(self, key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.store.get_bytes(key)))

    # -- publishing and reading -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def deferred_publish(self) -> Iterator[None]:
        """Publish once when the block ends (also after an error) instead of after every write in it.

        Each publish copies the whole DuckDB file, so a run that writes many partitions (a single-run backfill
        over a month) publishes once, not once per day. Readers see the block's loads together at its end.
        """
        self._defer_depth += 1
        try:
            yield
        finally:
            self._defer_depth -= 1
            if self._defer_depth == 0 and self._publish_pending:
                self._publish_pending = False
                self.publish()

    def publish(self) -> Path | None:
        """Swap a consistent copy of the warehouse into ``published_path`` (atomic rename).

        The rename happens under the writer lock too: two publishers racing would otherwise let the older copy
        land last and hide rows that were already loaded.
        """
        if self.published_path is None:
            return None
        if self._defer_depth:
            self._publish_pending = True
            return self.published_path
        self.published_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.published_path.with_name(f"{PUBLISH_TMP_PREFIX}{os.getpid()}-{self.published_path.name}")
        with self.writer() as con:
            # copies are only made under this lock, so any left now is from a publisher that was killed
            for stale in self.published_path.parent.glob(f"{PUBLISH_TMP_PREFIX}*-{self.published_path.name}"):
                stale.unlink(missing_ok=True)
            con.execute("CHECKPOINT")
            try:
                shutil.copyfile(self.db_path, tmp)
                os.replace(tmp, self.published_path)
            finally:
                tmp.unlink(missing_ok=True)
        return self.published_path

    def query(self, sql: str, params: list | None = None, *, published: bool = False) -> pd.DataFrame:
        """Run a read query: on the writer's file under the lock (consistent), or on the published copy."""
        if published:
            if self.published_path is None or not self.published_path.exists():
                raise WarehouseError("no published warehouse copy yet; materialize a partition first")
            con = duckdb.connect(str(self.published_path), read_only=True)
            try:
                return con.execute(sql, params or []).df()
            finally:
                con.close()
        with self._exclusive():  # read-only, under the lock: consistent with the loads, and never a write
            if not self.db_path.exists():
                raise WarehouseError(f"no warehouse at {self.db_path} yet; materialize a partition first")
            con = duckdb.connect(str(self.db_path), read_only=True)
            try:
                return con.execute(sql, params or []).df()
            finally:
                con.close()

    def read_partition(self, table: str, partition: PartitionKey) -> pd.DataFrame:
        self.spec(table)
        return self.query(
            f'SELECT * FROM "{table}" WHERE device = ? AND "date" = ? ORDER BY ALL',
            [partition.device, partition.date],
        )
