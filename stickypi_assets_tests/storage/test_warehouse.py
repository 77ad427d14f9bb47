"""Warehouse: per-partition replace, idempotence, migration, concurrent writers, analysts never block runs."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from stickypi_assets.storage.keys import partition_parquet_key
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import IMAGES, TABLES
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse, WarehouseError

DAY = date(2020, 6, 20)


def make_rows(device: str, day: date, n: int, tag: str = "a") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device": device,
            "date": day,
            "datetime": [datetime(day.year, day.month, day.day, 0, i, tzinfo=UTC) for i in range(n)],
            "object_key": [f"raw_images/{device}/{device}.{day}_00-{i:02d}-00.jpg" for i in range(n)],
            "md5": [f"{tag}{i:031x}" for i in range(n)],
            "status": "ok",
        }
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = LocalObjectStore(tmp_path / "store")
    return Warehouse(tmp_path / "wh.duckdb", store, published_path=tmp_path / "published.duckdb")


def count(warehouse: Warehouse, where: str = "TRUE") -> int:
    return int(warehouse.query(f"SELECT count(*) AS n FROM images WHERE {where}")["n"][0])


def test_write_replaces_only_its_partition(warehouse: Warehouse):
    p1, p2 = PartitionKey("0a5bb6f4", DAY), PartitionKey("1b74105a", DAY)
    warehouse.write_partition("images", p1, make_rows(p1.device, DAY, 5))
    warehouse.write_partition("images", p2, make_rows(p2.device, DAY, 3))
    assert count(warehouse) == 8
    # re-running p1 with other content replaces exactly its rows
    result = warehouse.write_partition("images", p1, make_rows(p1.device, DAY, 2, tag="b"))
    assert result.n_rows == 2
    assert count(warehouse, "device = '0a5bb6f4'") == 2
    assert count(warehouse, "device = '0a5bb6f4' AND md5 LIKE 'b%'") == 2
    assert count(warehouse, "device = '1b74105a'") == 3
    # idempotent: same input twice, same rows once
    warehouse.write_partition("images", p2, make_rows(p2.device, DAY, 3))
    assert count(warehouse, "device = '1b74105a'") == 3
    # an empty partition clears its rows
    warehouse.write_partition("images", p2, make_rows(p2.device, DAY, 0))
    assert count(warehouse, "device = '1b74105a'") == 0
    assert warehouse.store.exists(partition_parquet_key("images", p1))


def test_parquet_is_the_source_of_truth(warehouse: Warehouse, tmp_path: Path):
    parts = [PartitionKey("0a5bb6f4", date(2020, 6, d)) for d in (20, 21)]
    for p in parts:
        warehouse.write_partition("images", p, make_rows(p.device, p.date, 4))
    assert warehouse.partitions("images") == parts
    # lose the DuckDB file entirely, rebuild from the object store
    for f in tmp_path.glob("wh.duckdb*"):
        f.unlink()
    fresh = Warehouse(tmp_path / "wh.duckdb", warehouse.store, published_path=tmp_path / "published.duckdb")
    assert fresh.rebuild() == {"images": 8} | {t: 0 for t in TABLES if t != "images"}
    assert count(fresh) == 8
    # analysts can read the Parquet without DuckDB's file: hive-partitioned layout
    root = warehouse.store.local_path("warehouse/images")
    df = duckdb.sql(f"SELECT device, count(*) n FROM read_parquet('{root}/*/*/*.parquet') GROUP BY ALL").df()
    assert df["n"].tolist() == [8]


def test_rows_are_checked_against_schema_and_partition(warehouse: Warehouse):
    p = PartitionKey("0a5bb6f4", DAY)
    with pytest.raises(WarehouseError, match="no columns"):
        warehouse.write_partition("images", p, make_rows(p.device, DAY, 1).assign(colour="red"))
    with pytest.raises(WarehouseError, match="device values"):
        warehouse.write_partition("images", p, make_rows("1b74105a", DAY, 1))
    with pytest.raises(WarehouseError, match="unknown table"):
        warehouse.write_partition("nope", p, make_rows(p.device, DAY, 1))
    assert not warehouse.store.exists(partition_parquet_key("images", p))  # nothing half-written


def test_schema_migration_adds_missing_columns(tmp_path: Path):
    db = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(db))
    con.execute('CREATE TABLE images (device VARCHAR, "date" DATE, object_key VARCHAR)')
    con.execute("INSERT INTO images VALUES ('0a5bb6f4', DATE '2020-06-19', 'old.jpg')")
    con.close()
    warehouse = Warehouse(db, LocalObjectStore(tmp_path / "store"))
    warehouse.write_partition("images", PartitionKey("0a5bb6f4", DAY), make_rows("0a5bb6f4", DAY, 2))
    cols = warehouse.query("SELECT column_name FROM information_schema.columns WHERE table_name='images'")
    assert set(IMAGES.column_names) <= set(cols["column_name"])
    old = warehouse.query("SELECT md5, object_key FROM images WHERE \"date\" = DATE '2020-06-19'")
    assert old["object_key"].tolist() == ["old.jpg"] and old["md5"].isna().all()


def _writer_process(root: str, device: str, days: list[int], shared: list[int]) -> None:
    store = LocalObjectStore(Path(root) / "store")
    wh = Warehouse(Path(root) / "wh.duckdb", store, published_path=Path(root) / "published.duckdb")
    for d in days:
        day = date(2020, 7, d)
        wh.write_partition("images", PartitionKey(device, day), make_rows(device, day, 7))
        if d in shared:  # both writers also write the same partition with the same rows
            wh.write_partition("images", PartitionKey("ffffffff", day), make_rows("ffffffff", day, 3))


def test_two_concurrent_writers_keep_every_row_exactly_once(tmp_path: Path):
    ctx = mp.get_context("spawn")
    days = list(range(1, 13))
    shared = [2, 5, 9]
    procs = [
        ctx.Process(target=_writer_process, args=(str(tmp_path), dev, days, shared))
        for dev in ("0a5bb6f4", "1b74105a")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    wh = Warehouse(tmp_path / "wh.duckdb", LocalObjectStore(tmp_path / "store"))
    assert count(wh) == 2 * 12 * 7 + 3 * 3
    dupes = wh.query("SELECT object_key, count(*) n FROM images GROUP BY object_key HAVING n > 1")
    assert dupes.empty
    per_partition = wh.query('SELECT device, "date", count(*) n FROM images GROUP BY ALL')
    assert set(per_partition["n"]) == {7, 3}
    assert len(wh.partitions("images")) == 2 * 12 + 3


def test_open_analyst_session_does_not_block_runs(warehouse: Warehouse):
    p = PartitionKey("0a5bb6f4", DAY)
    warehouse.write_partition("images", p, make_rows(p.device, DAY, 1))
    published = warehouse.published_path
    # an analyst holds the published copy open in another process while runs keep writing
    analyst = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import duckdb, sys, time
                con = duckdb.connect({str(published)!r}, read_only=True)
                print(con.execute('SELECT count(*) FROM images').fetchone()[0], flush=True)
                time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout is not None and analyst.stdout.readline().strip() == "1"
        t0 = time.monotonic()
        for d in range(1, 6):
            day = date(2020, 8, d)
            warehouse.write_partition("images", PartitionKey(p.device, day), make_rows(p.device, day, 2))
        assert time.monotonic() - t0 < 25  # not stalled behind the analyst's lock
        assert count(warehouse) == 11
        assert int(warehouse.query("SELECT count(*) n FROM images", published=True)["n"][0]) == 11
    finally:
        analyst.kill()
        analyst.wait()


def test_someone_holding_the_writer_file_gives_a_clear_error(warehouse: Warehouse):
    warehouse.write_partition("images", PartitionKey("0a5bb6f4", DAY), make_rows("0a5bb6f4", DAY, 1))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(warehouse.db_path)!r}); print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseError, match="published copy"):
            warehouse.write_partition("images", PartitionKey("0a5bb6f4", DAY), make_rows("0a5bb6f4", DAY, 1))
    finally:
        holder.kill()
        holder.wait()


def test_deferred_publish_publishes_once_at_the_end_even_after_an_error(warehouse: Warehouse):
    days = [PartitionKey("0a5bb6f4", date(2020, 6, d)) for d in (20, 21, 22)]
    published = warehouse.published_path
    with warehouse.deferred_publish():
        for p in days[:2]:
            warehouse.write_partition("images", p, make_rows(p.device, p.date, 3))
        assert not published.exists()  # loaded into DuckDB, not yet copied out
        assert count(warehouse) == 6
    assert count_published(warehouse) == 6
    stamp = published.stat().st_mtime_ns
    with pytest.raises(RuntimeError), warehouse.deferred_publish():
        warehouse.write_partition("images", days[2], make_rows(days[2].device, days[2].date, 4))
        raise RuntimeError("the run failed after loading one day")
    assert count_published(warehouse) == 10 and published.stat().st_mtime_ns != stamp  # what was loaded is published


def count_published(warehouse: Warehouse) -> int:
    return int(warehouse.query("SELECT count(*) AS n FROM images", published=True)["n"][0])


# -- hostile inputs (issue 19) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["0a5bb6f4/../x", "../../etc", "a/b", "device=x", "0A5BB6F4X", ""])
def test_a_partition_key_with_a_path_in_its_device_is_refused(warehouse: Warehouse, device: str):
    with pytest.raises(ValueError, match="invalid device id"):
        PartitionKey(device, DAY)
    assert list(warehouse.store.list("")) == []


def test_a_partition_key_with_a_datetime_or_text_date_is_refused():
    with pytest.raises(TypeError, match="datetime.date"):
        PartitionKey("0a5bb6f4", datetime(2020, 6, 20, 1, tzinfo=UTC))
    with pytest.raises(TypeError, match="datetime.date"):
        PartitionKey("0a5bb6f4", "2020-06-20")


def test_a_foreign_object_under_a_table_prefix_is_skipped_by_rebuild(warehouse: Warehouse, caplog):
    p = PartitionKey("0a5bb6f4", DAY)
    warehouse.write_partition("images", p, make_rows(p.device, DAY, 4))
    prefix = partition_parquet_key("images", p).split("device=")[0]
    warehouse.store.put_bytes(f"{prefix}device=../date=2020-06-20/part.parquet", b"junk")
    warehouse.store.put_bytes(f"{prefix}device=0a5bb6f4/date=June/part.parquet", b"junk")
    with caplog.at_level("WARNING", logger="stickypi_assets.storage.warehouse"):
        assert warehouse.partitions("images") == [p]
        assert warehouse.rebuild(["images"])["images"] == 4
    assert f"skipped {prefix}device=../date=2020-06-20/part.parquet, not a partition object" in caplog.text
    assert f"skipped {prefix}device=0a5bb6f4/date=June/part.parquet, not a partition object" in caplog.text


def test_a_killed_publish_leaves_no_copy_behind_after_the_next_publish(warehouse: Warehouse, tmp_path: Path):
    p = PartitionKey("0a5bb6f4", DAY)
    warehouse.write_partition("images", p, make_rows(p.device, DAY, 3))
    stale = tmp_path / ".tmp-999999-published.duckdb"  # what a publisher killed mid-copy leaves
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / ".tmp-999999-someone-else.txt"
    other.write_text("not ours")
    warehouse.publish()
    assert not stale.exists() and other.exists()
    assert [f.name for f in tmp_path.glob(".tmp-*")] == [other.name]
    assert int(warehouse.query("SELECT count(*) n FROM images", published=True)["n"][0]) == 3


def test_a_publish_that_fails_mid_copy_removes_its_copy(warehouse: Warehouse, tmp_path: Path, monkeypatch):
    import shutil

    p = PartitionKey("0a5bb6f4", DAY)
    warehouse.write_partition("images", p, make_rows(p.device, DAY, 3))
    before = (tmp_path / "published.duckdb").read_bytes()

    def full_disk(src, dst):
        Path(dst).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(OSError, match="No space"):
        warehouse.publish()
    assert list(tmp_path.glob(".tmp-*")) == []
    assert (tmp_path / "published.duckdb").read_bytes() == before  # the analysts' copy is the previous one


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM images", "DROP TABLE images", "CREATE TABLE x (a INT)", "INSERT INTO images (device) VALUES ('x')",
     "UPDATE images SET status = 'error'"],
)  # fmt: skip
def test_a_writer_side_query_that_writes_is_refused_and_changes_nothing(warehouse: Warehouse, sql: str):
    p = PartitionKey("0a5bb6f4", DAY)
    warehouse.write_partition("images", p, make_rows(p.device, DAY, 3))
    with pytest.raises(duckdb.Error, match="read-only"):
        warehouse.query(sql)
    assert count(warehouse) == 3 and count(warehouse, "status = 'ok'") == 3
    assert "x" not in set(warehouse.query("SHOW TABLES")["name"])
