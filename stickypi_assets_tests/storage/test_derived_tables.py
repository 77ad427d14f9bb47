"""Derived tables (capture_rows, daily_taxon_counts): after any sequence of partition loads they equal their
definitions over the whole warehouse, i.e. what a full rebuild from the Parquet objects gives."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from stickypi_assets.storage.derived import STATE_TABLE
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import CLASSIFICATIONS, DERIVED_TABLES, TUBOIDS
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse

DAY0 = date(2020, 6, 1)
FAMILIES = ("Sciaridae", "Muscidae", "Culicidae", None)


def _warehouse(tmp_path: Path) -> Warehouse:
    store = LocalObjectStore(tmp_path / "store")
    return Warehouse(tmp_path / "wh.duckdb", store, published_path=tmp_path / "pub.duckdb")


def _derived_rows(wh: Warehouse, name: str) -> pd.DataFrame:
    table = DERIVED_TABLES[name]
    cols = ", ".join(f'"{c}"' for c in table.spec.column_names)
    got = wh.query(f'SELECT {cols} FROM "{name}" ORDER BY ALL')
    want = wh.query(f"SELECT {cols} FROM ({table.select('')}) AS d ORDER BY ALL")
    return got, want


def assert_derived_equal_definitions(wh: Warehouse) -> None:
    for name in DERIVED_TABLES:
        got, want = _derived_rows(wh, name)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=name)


def _day_rows(rng: random.Random, device: str, day: date, carried: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One device-day: some tracks continued from yesterday (``carried``), some new ones."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ids = [t for t in carried if rng.random() < 0.7]
    ids += [f"{device}.{day}_{i:02d}.{rng.randrange(1000)}" for i in range(rng.randrange(0, 6))]
    tub, cls = [], []
    for tid in ids:
        first = start + timedelta(minutes=rng.randrange(0, 1200))
        n = rng.randrange(1, 40)
        head = first if tid.startswith(f"{device}.{day}") else start - timedelta(hours=2)
        tub.append({"tuboid_id": tid, "track_first_seen": head, "first_seen": first,
                    "last_seen": first + timedelta(minutes=20 * n), "n_frames": n,
                    "median_area": rng.uniform(10, 900), "model_version": rng.choice(["s1", "s2"])})  # fmt: skip
        status = rng.choice(["ok", "ok", "ok", "not_classified"])
        kind = rng.choice(["Insecta"] * 5 + ["Background"])
        family = rng.choice(FAMILIES) if status == "ok" else None
        label = FAMILIES.index(family) if family else None
        cls.append({"tuboid_id": tid, "n_frames": n, "status": status, "label": label,
                    "type": kind if status == "ok" else None, "order": "Diptera" if family else None, "family": family,
                    "probability": rng.random() if status == "ok" else None, "model_version": "i1"})  # fmt: skip
    return pd.DataFrame(tub, columns=[*TUBOIDS.column_names[2:]]), pd.DataFrame(cls)


def test_incremental_loads_equal_the_definitions_and_a_full_rebuild(tmp_path: Path):
    """Days in order, re-runs of a day with other tracks (tuboids vanish or change), classifications before and
    after their tuboids, and a device-day emptied: every step ends where the definitions say."""
    rng = random.Random(7)
    wh = _warehouse(tmp_path)
    devices = ("aaaaaaaa", "bbbbbbbb")
    carried = {d: [] for d in devices}
    written = []
    for i in range(5):
        day = DAY0 + timedelta(days=i)
        for device in devices:
            tub, cls = _day_rows(rng, device, day, carried[device])
            key = PartitionKey(device, day)
            if rng.random() < 0.5:  # classifications may land before the tuboids they describe
                wh.write_partition(CLASSIFICATIONS.name, key, cls, publish=False)
                wh.write_partition(TUBOIDS.name, key, tub, publish=False)
            else:
                wh.write_partition(TUBOIDS.name, key, tub, publish=False)
                wh.write_partition(CLASSIFICATIONS.name, key, cls, publish=False)
            carried[device] = list(tub.tuboid_id)
            written.append(key)
            assert_derived_equal_definitions(wh)
    # re-run earlier days with different tracks: continued tuboids lose or gain days, some disappear entirely
    for key in rng.sample(written, 4):
        tub, cls = _day_rows(rng, key.device, key.date, carried[key.device])
        wh.write_partition(TUBOIDS.name, key, tub, publish=False)
        assert_derived_equal_definitions(wh)
        wh.write_partition(CLASSIFICATIONS.name, key, cls, publish=False)
        assert_derived_equal_definitions(wh)
    emptied = written[3]
    wh.write_partition(TUBOIDS.name, emptied, pd.DataFrame(columns=["tuboid_id"]), publish=False)
    assert_derived_equal_definitions(wh)

    n_captures = wh.query("SELECT count(*) AS n FROM capture_rows").n[0]
    assert n_captures > 20  # the sample is not trivially empty
    before = {name: _derived_rows(wh, name)[0] for name in DERIVED_TABLES}
    wh.rebuild()
    for name in DERIVED_TABLES:
        pd.testing.assert_frame_equal(_derived_rows(wh, name)[0], before[name], obj=name)


def test_rerunning_a_day_leaves_captures_unchanged(tmp_path: Path):
    """Idempotence: the same rows loaded again change nothing, a day whose tracks continue into the next too."""
    rng = random.Random(3)
    wh = _warehouse(tmp_path)
    tub1, cls1 = _day_rows(rng, "aaaaaaaa", DAY0, [])
    tub2, cls2 = _day_rows(rng, "aaaaaaaa", DAY0 + timedelta(days=1), list(tub1.tuboid_id))
    assert set(tub1.tuboid_id) & set(tub2.tuboid_id)  # tracks continue across midnight
    day1, day2 = PartitionKey("aaaaaaaa", DAY0), PartitionKey("aaaaaaaa", DAY0 + timedelta(days=1))
    days = ((day1, tub1, cls1), (day2, tub2, cls2))
    for key, tub, cls in days:
        wh.write_partition(TUBOIDS.name, key, tub)
        wh.write_partition(CLASSIFICATIONS.name, key, cls)
    first = wh.query("SELECT * FROM captures ORDER BY tuboid_id", published=True)
    counts = wh.query("SELECT * FROM daily_taxon_counts ORDER BY ALL", published=True)
    wh.write_partition(TUBOIDS.name, PartitionKey("aaaaaaaa", DAY0), tub1)
    wh.write_partition(CLASSIFICATIONS.name, PartitionKey("aaaaaaaa", DAY0), cls1)
    pd.testing.assert_frame_equal(wh.query("SELECT * FROM captures ORDER BY tuboid_id", published=True), first)
    pd.testing.assert_frame_equal(wh.query("SELECT * FROM daily_taxon_counts ORDER BY ALL", published=True), counts)
    assert counts.n_captures.dtype.kind == "i"  # counts are integers, not floats


def test_a_warehouse_with_the_old_views_is_migrated(tmp_path: Path):
    """A warehouse written before the derived tables has views of those names: they become tables with the rows
    the views gave, on the next open."""
    wh = _warehouse(tmp_path)
    tub, cls = _day_rows(random.Random(1), "aaaaaaaa", DAY0, [])
    wh.write_partition(TUBOIDS.name, PartitionKey("aaaaaaaa", DAY0), tub, publish=False)
    wh.write_partition(CLASSIFICATIONS.name, PartitionKey("aaaaaaaa", DAY0), cls, publish=False)
    want = wh.query('SELECT * FROM daily_taxon_counts ORDER BY ALL')
    con = duckdb.connect(str(wh.db_path))
    con.execute("DROP VIEW captures")
    con.execute("DROP TABLE daily_taxon_counts")
    con.execute(f'DROP TABLE "{STATE_TABLE}"')
    con.execute("CREATE VIEW daily_taxon_counts AS SELECT 1 AS stale")
    con.close()
    wh.publish()  # any writer open migrates
    assert wh.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'daily_taxon_counts'"
                    ).table_type[0] == "BASE TABLE"  # fmt: skip
    pd.testing.assert_frame_equal(wh.query('SELECT * FROM daily_taxon_counts ORDER BY ALL'), want)


def test_a_changed_definition_recomputes_the_table(tmp_path: Path):
    wh = _warehouse(tmp_path)
    tub, cls = _day_rows(random.Random(2), "aaaaaaaa", DAY0, [])
    wh.write_partition(TUBOIDS.name, PartitionKey("aaaaaaaa", DAY0), tub, publish=False)
    con = duckdb.connect(str(wh.db_path))
    con.execute("DELETE FROM capture_rows")  # as if computed by an older definition
    con.execute(f"UPDATE \"{STATE_TABLE}\" SET definition = 'old' WHERE name = 'capture_rows'")
    con.close()
    wh.publish()
    assert_derived_equal_definitions(wh)
    assert wh.query("SELECT count(*) AS n FROM capture_rows").n[0] == len(tub)  # no classifications: all in


def test_a_failed_load_changes_no_derived_row(tmp_path: Path, monkeypatch):
    """The derived update is part of the load's transaction: an error in it rolls the partition back too."""
    wh = _warehouse(tmp_path)
    tub, cls = _day_rows(random.Random(4), "aaaaaaaa", DAY0, [])
    key = PartitionKey("aaaaaaaa", DAY0)
    wh.write_partition(TUBOIDS.name, key, tub, publish=False)
    before = wh.query("SELECT * FROM capture_rows ORDER BY ALL")
    from stickypi_assets.storage import derived

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(derived.ChangeTracker, "apply", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        wh.write_partition(TUBOIDS.name, key, tub.iloc[:1], publish=False)
    monkeypatch.undo()
    assert wh.query("SELECT count(*) AS n FROM tuboids").n[0] == len(tub)
    pd.testing.assert_frame_equal(wh.query("SELECT * FROM capture_rows ORDER BY ALL"), before)
