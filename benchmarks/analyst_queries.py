"""Analyst queries on a season-sized warehouse: the views of before against the derived tables, side by side.

Builds, with the project's own DDL (``storage/tables.py``) and the warehouse's own migration, a DuckDB file shaped
like 100 devices x 180 days: 1.3 M images, ``--instances`` instances (10 M by default), and tuboid-day rows in one
of two shapes: ``--shape sparse`` (~8 per device-day: every insect one tuboid a day, 142 k rows) or ``--shape busy``
(~79 per device-day: tracks split into several tuboids, 1.42 M rows). Tracks last 1-4 days, so most tuboids have
rows on several days, as continued tracks do. Every tuboid row has a classification (6 insect taxa, 5%
Background, 5% not classified).

Then, in one run on the same file, for every README query and the slices analysts ask for: the median of
``--repeat`` warm runs on the **old views** (the definitions this version replaced, recreated here under
``*_view`` names: they recompute the season for every query) and on the **derived tables** that the warehouse
now keeps current per partition, with the ratio. Last, what that costs a writer: the median time to load one
tuboids and one classifications partition (a device-day whose tracks continue from the day before) into the
season-sized file, with and without the derived tables' update.

Run: ``.venv/bin/python benchmarks/analyst_queries.py [--shape busy|sparse|both] [--instances 10000000]
[--threads 2] [--repeat 5] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from stickypi_assets.storage.keys import PartitionKey
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import CLASSIFICATIONS, TUBOIDS
from stickypi_assets.storage.warehouse import Warehouse

DEVICES, DAYS, IMAGES_PER_DAY = 100, 180, 72
DAY0 = date(2020, 4, 1)
#: Tuboid-day rows per device-day of each shape (x 18,000 device-days: 142 k and 1.42 M rows).
SHAPES = {"sparse": 7.9, "busy": 78.9}
TAXA = ("Sciaridae", "Muscidae", "Culicidae", "Cicadellidae", "Coccinellidae", "Psychodidae")

#: The analysts' views of the previous version, kept only to measure against (the derived tables replaced them).
OLD_CAPTURES = """
    WITH t AS (
        SELECT tuboid_id, any_value(device) AS device, min(track_first_seen) AS capture_time,
               max(last_seen) AS last_seen, sum(n_frames) AS n_frames, median(median_area) AS size_px,
               count(*) AS n_days, any_value(model_version) AS sim_model_version
        FROM tuboids GROUP BY tuboid_id
    ), c AS (
        SELECT *, row_number() OVER (PARTITION BY tuboid_id ORDER BY n_frames DESC, "date") AS rank
        FROM classifications WHERE status = 'ok'
    )
    SELECT t.tuboid_id, t.device, t.capture_time, t.last_seen, t.n_days, t.n_frames,
           coalesce(nullif(concat_ws('.', c.type, c."order", c.family, c.genus, c.species), ''),
                    'unclassified') AS taxon,
           c.type, c."order", c.family, c.genus, c.species, c.label, c.probability AS confidence,
           t.size_px, CAST(NULL AS DOUBLE) AS size_mm2, t.sim_model_version, c.model_version AS itc_model_version
    FROM t LEFT JOIN c ON c.tuboid_id = t.tuboid_id AND c.rank = 1
    WHERE c.type IS DISTINCT FROM 'Background'
"""
OLD_COUNTS = """
    SELECT device, CAST(timezone('UTC', capture_time) AS DATE) AS "date", taxon, count(*) AS n_captures
    FROM captures_view GROUP BY ALL
"""

#: name -> query with {captures} and {counts} for the relation names (README queries first).
QUERIES = {
    "README daily counts per taxon": 'SELECT "date", taxon, sum(n_captures) AS caught FROM {counts} '
    'GROUP BY ALL ORDER BY "date", caught DESC',
    "README hour x taxon": "SELECT taxon, hour(timezone('UTC', capture_time)) AS utc_hour, count(*) AS n "
    "FROM {captures} WHERE confidence >= 0.8 GROUP BY ALL ORDER BY taxon, utc_hour",
    "README size per taxon": "SELECT taxon, count(*) AS n, round(median(size_px)) AS median_px, "
    "round(median(n_frames)) AS median_frames FROM {captures} GROUP BY ALL ORDER BY n DESC",
    "README images per device-day": "SELECT device, \"date\", count(*) AS images, count(*) FILTER (status <> 'ok') "
    "AS unusable FROM images GROUP BY ALL ORDER BY ALL",
    "daily_taxon_counts, all rows": "SELECT * FROM {counts}",
    "captures, one device, one week": "SELECT * FROM {captures} WHERE device = 'd0000042' AND capture_time >= "
    "TIMESTAMPTZ '2020-06-01 00:00:00+00' AND capture_time < TIMESTAMPTZ '2020-06-08 00:00:00+00'",
    "daily_taxon_counts, one device, one week": "SELECT * FROM {counts} WHERE device = 'd0000042' AND "
    "\"date\" BETWEEN DATE '2020-06-01' AND DATE '2020-06-07'",
    "count(*) FROM captures": "SELECT count(*) FROM {captures}",
}


def build(db: Path, shape: str, n_instances: int) -> dict[str, int]:
    """Fill ``db`` with the season (project DDL); returns row counts."""
    store = LocalObjectStore(db.parent / "store")
    wh = Warehouse(db, store, derived_tables={})  # base tables only: the derived ones are computed after the load
    with wh.writer():
        pass
    per_day = SHAPES[shape]
    tracks_per_device = round(per_day * DAYS / 2.5)  # tracks last 1-4 days (mean 2.5)
    con = duckdb.connect(str(db))
    con.execute("SET threads = 2")
    con.execute(f"""
        INSERT INTO images (device, "date", datetime, object_key, md5, size_bytes, width, height, status)
        SELECT printf('d%07d', d), DATE '{DAY0}' + CAST(k // {IMAGES_PER_DAY} AS INTEGER),
               TIMESTAMPTZ '{DAY0} 00:00:00+00' + to_minutes(CAST(k * 20 AS BIGINT)),
               printf('raw_images/d%07d/%d.jpg', d, k), md5(printf('%d-%d', d, k)), 800000, 2592, 1944,
               CASE WHEN hash(d, k) % 50 = 0 THEN 'error' ELSE 'ok' END
        FROM range({DEVICES}) r(d), range({DAYS * IMAGES_PER_DAY}) s(k)
    """)
    if n_instances:
        con.execute(f"""
            INSERT INTO instances (device, "date", datetime, image_key, instance_id, class_name, polygon_wkt,
                                   bbox_x, bbox_y, bbox_w, bbox_h, area, centroid_x, centroid_y, score, model_version)
            SELECT printf('d%07d', i % {DEVICES}), DATE '{DAY0}' + CAST((i // {DEVICES}) % {DAYS} AS INTEGER),
                   TIMESTAMPTZ '{DAY0} 00:00:00+00' + to_minutes(CAST(((i // {DEVICES}) % {DAYS}) * 1440 AS BIGINT)),
                   printf('raw_images/%d.jpg', i), printf('i%d', i), 'insect',
                   'POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))', 1, 2, 30, 40, 900.0, 15.0, 20.0,
                   (hash(i) % 1000) / 1000.0, 'uid1'
            FROM range({n_instances}) r(i)
        """)
    # tracks: device d, track k starts on day s for L days at minute m; one tuboid row per day it spans
    con.execute(f"""
        CREATE TEMP TABLE tracks AS
        SELECT d, k, CAST(hash(d, k, 1) % {DAYS} AS INTEGER) AS s, CAST(1 + hash(d, k, 2) % 4 AS INTEGER) AS len,
               CAST(hash(d, k, 3) % 1440 AS INTEGER) AS m
        FROM range({DEVICES}) r(d), range({tracks_per_device}) q(k)
    """)
    con.execute(f"""
        INSERT INTO tuboids (device, "date", tuboid_id, folder_id, track_first_seen, first_seen, last_seen, n_frames,
                             n_frames_total, continued, open, median_area, model_version)
        SELECT printf('d%07d', d), DATE '{DAY0}' + CAST(s + j AS INTEGER), printf('d%07d.%d.%d', d, s, k),
               printf('%d.%04d', j, k),
               TIMESTAMPTZ '{DAY0} 00:00:00+00' + to_minutes(CAST(s * 1440 + m AS BIGINT)),
               TIMESTAMPTZ '{DAY0} 00:00:00+00' + to_minutes(CAST((s + j) * 1440 + CASE WHEN j = 0 THEN m ELSE 0 END
                                                                   AS BIGINT)),
               TIMESTAMPTZ '{DAY0} 00:00:00+00' + to_minutes(CAST((s + j) * 1440 + 1439 AS BIGINT)),
               CAST(3 + hash(d, k, j) % 60 AS INTEGER), CAST(3 + hash(d, k) % 200 AS INTEGER), j > 0, j < len - 1,
               100 + hash(d, k, j, 4) % 800, 'sim1'
        FROM tracks, range(4) u(j) WHERE j < len AND s + j < {DAYS}
    """)
    taxa = ", ".join(f"'{t}'" for t in TAXA)
    con.execute(f"""
        INSERT INTO classifications (device, "date", tuboid_id, folder_id, n_frames, status, label, pattern, type,
                                     "order", family, probability, model_version)
        SELECT device, "date", tuboid_id, folder_id, n_frames,
               CASE WHEN h % 20 = 0 THEN 'not_classified' ELSE 'ok' END,
               CASE WHEN h % 20 = 0 THEN NULL ELSE CAST(h % 7 AS INTEGER) END, NULL,
               CASE WHEN h % 20 = 0 THEN NULL WHEN h % 20 = 1 THEN 'Background' ELSE 'Insecta' END,
               CASE WHEN h % 20 < 2 THEN NULL ELSE 'Diptera' END,
               CASE WHEN h % 20 < 2 THEN NULL ELSE list_extract([{taxa}], CAST(1 + h % {len(TAXA)} AS INTEGER)) END,
               CASE WHEN h % 20 = 0 THEN NULL ELSE 0.3 + (h % 700) / 1000.0 END, 'itc1'
        FROM (SELECT *, hash(tuboid_id, "date") AS h FROM tuboids)
    """)
    con.execute(f"CREATE VIEW captures_view AS {OLD_CAPTURES}")
    con.execute(f"CREATE VIEW daily_taxon_counts_view AS {OLD_COUNTS}")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("images", "instances", "tuboids")}
    con.close()
    start = time.perf_counter()
    with Warehouse(db, store).writer() as con:  # the migration computes the derived tables once, in full
        counts["captures"] = con.execute("SELECT count(*) FROM captures").fetchone()[0]
    counts["full recomputation (s)"] = round(time.perf_counter() - start, 1)
    return counts


def timed(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> float:
    con.execute(sql).fetchall()  # warm
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        con.execute(sql).fetchall()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def compare_queries(db: Path, threads: int, repeat: int) -> pd.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"SET threads = {threads}")
    rows = []
    for name, sql in QUERIES.items():
        before = timed(con, sql.format(captures="captures_view", counts="daily_taxon_counts_view"), repeat)
        after = timed(con, sql.format(captures="captures", counts="daily_taxon_counts"), repeat)
        rows.append({"query": name, "views (s)": before, "tables (s)": after, "speed-up": before / after})
    # the tables hold what the views compute
    same = con.execute(
        "SELECT (SELECT count(*) FROM (SELECT device, \"date\", taxon, n_captures FROM daily_taxon_counts "
        "EXCEPT ALL SELECT device, \"date\", taxon, n_captures FROM daily_taxon_counts_view)) = 0"
    ).fetchone()[0]
    con.close()
    print(f"daily_taxon_counts table == old view: {same}")
    return pd.DataFrame(rows)


def load_cost(db: Path, repeat: int) -> pd.DataFrame:
    """Median seconds to reload one device-day (tuboids, then classifications), with and without derived tables."""
    store = LocalObjectStore(db.parent / "store")
    key = PartitionKey("d0000042", DAY0 + timedelta(days=90))
    con = duckdb.connect(str(db), read_only=True)
    rows = 'SELECT * EXCLUDE (device, "date") FROM {} WHERE device = ? AND "date" = ?'
    tub = con.execute(rows.format("tuboids"), [key.device, key.date]).df()
    cls = con.execute(rows.format("classifications"), [key.device, key.date]).df()
    con.close()
    rows = []
    for label, derived in (("without derived tables", {}), ("with derived tables", None)):
        wh = Warehouse(db, store, derived_tables=derived)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            wh.write_partition(TUBOIDS.name, key, tub, publish=False)
            wh.write_partition(CLASSIFICATIONS.name, key, cls, publish=False)
            runs.append(time.perf_counter() - start)
        rows.append({"load of one device-day": label, "seconds (median)": statistics.median(runs)})
    print(f"(device-day of {len(tub)} tuboid rows, {int(tub.continued.sum())} continued from the day before)")
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--instances", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the warehouses in this folder and keep them")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*inplace keyword")  # pandas deprecation noise from DuckDB .df()
    pd.set_option("display.width", 160)
    shapes = list(SHAPES) if args.shape == "both" else [args.shape]
    with tempfile.TemporaryDirectory(prefix="analyst-bench-") as tmp:
        root = args.keep or Path(tmp)
        for shape in shapes:
            db = root / shape / "warehouse.duckdb"
            db.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            counts = build(db, shape, args.instances)
            print(f"\n## shape {shape}: {counts} (built in {time.perf_counter() - start:.0f} s)")
            print(compare_queries(db, args.threads, args.repeat).to_string(index=False, float_format="%.3f"))
            print(load_cost(db, args.repeat).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
