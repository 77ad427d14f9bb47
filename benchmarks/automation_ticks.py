"""Idle tick cost of every sensor and the schedule on a season-sized store, and with twice the history.

Builds a local object store shaped like a season of 100 devices: ``--days`` days of raw image objects (72 a day per
device: 216 k objects for 30 days; the bytes are placeholders, only the listing matters), and ``--annotation-mb``
of UID/SIM/ITC annotation files (553 MB by default). A Dagster instance gets the 100 devices and the
materializations of the stage assets for the last ``--days`` days. Then each sensor runs as the daemon runs it:
one first tick (it sets the cursor), then ``--repeat`` idle ticks with nothing new, reported as the median. The
model-refresh automation sensor is evaluated with ``evaluate_automation_conditions`` (the core of its tick,
including the cursor it stores) after a model change, and the idle ticks after it. Everything runs twice: with the
history since ``--start-date`` and with twice that history (twice the days of objects, a start date twice as far
back).

Run: ``.venv/bin/python benchmarks/automation_ticks.py [--days 30] [--annotation-mb 553] [--repeat 5]
[--start-date 2020-01-01]``. The script sets ``STICKYPI_START_DATE`` for each run (it decides the partitions).
For comparison it also times the UID annotation listing the way the sensor did it before (a new store per tick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

CHILD = "--child"
DEVICES = [f"{0x10000000 + i:08x}" for i in range(100)]


def build_store(root: Path, days: int, annotation_mb: int) -> None:
    from stickypi_assets.storage.keys import annotation_prefix, raw_image_key

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for device in DEVICES:
        for k in range(days * 72):
            when = end - timedelta(minutes=20 * (k + 1))
            path = root / raw_image_key(device, f"{device}.{when:%Y-%m-%d_%H-%M-%S}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\xff\xd8")
    chunk = os.urandom(256 * 1024)
    shares = {"uid": (0.8, ".svg"), "sim": (0.1, ".svg"), "itc": (0.1, "/tuboid.jpg")}
    for stage, (share, suffix) in shares.items():
        n = max(1, int(annotation_mb * share * 4))  # 256 kB files
        for i in range(n):
            path = root / f"{annotation_prefix(stage)}{i:06d}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(chunk[: 200_000 + i % 50_000] + i.to_bytes(4, "big"))


def median_ticks(tick, repeat: int) -> tuple[float, float]:
    """(first tick, median of the idle ticks after it) in seconds."""
    start = time.perf_counter()
    tick()
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        tick()
        runs.append(time.perf_counter() - start)
    return first, statistics.median(runs)


def child(root: Path, days: int, repeat: int) -> None:
    """Runs in a process whose STICKYPI_START_DATE is set (the partitions are built at import)."""
    from dagster import (
        AssetKey,
        AssetMaterialization,
        AssetSelection,
        DagsterInstance,
        build_schedule_context,
        build_sensor_context,
        evaluate_automation_conditions,
    )
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    from stickypi_assets.definitions import defs
    from stickypi_assets.orchestration.partitions import multi_partition_key
    from stickypi_assets.orchestration.resources import StickyPiStorage

    storage = StickyPiStorage(store_url=str(root / "store"), warehouse_path=str(root / "wh.duckdb"))
    with tempfile.TemporaryDirectory() as home:
        instance = DagsterInstance.local_temp(home)
        instance.add_dynamic_partitions("devices", DEVICES)
        today = datetime.now(UTC).date()
        stages = ("uid_segmentations", "tuboids", "classifications")
        for stage in stages:
            for device in DEVICES:
                for d in range(1, min(days, 14) + 1):
                    key = multi_partition_key(device, today - timedelta(days=d))
                    instance.report_runless_asset_event(AssetMaterialization(AssetKey(stage), partition=key))
        rows = []
        for name in ("device_discovery_sensor", "uid_annotations_sensor", "sim_annotations_sensor",
                     "itc_annotations_sensor"):  # fmt: skip
            sensor = defs.resolve_sensor_def(name)
            cursor: list[str | None] = [None]

            def tick(sensor=sensor, cursor=cursor):
                context = build_sensor_context(
                    instance=instance, resources={"storage": storage}, cursor=cursor[0], definitions=defs
                )
                result = sensor.evaluate_tick(context)
                cursor[0] = result.cursor or cursor[0]

            rows.append((name, *median_ticks(tick, repeat)))
        from stickypi_assets.lifecycle.training import annotation_manifest
        from stickypi_assets.storage.connect import open_object_store

        settings = storage.settings()  # before: a store built per tick, so every annotation byte hashed again
        def listing_before():
            annotation_manifest(open_object_store(settings), "uid")

        rows.append(("uid annotation listing, new store per tick (before)", *median_ticks(listing_before, repeat)))
        schedule = defs.resolve_schedule_def("pipeline_job_schedule")

        def schedule_tick():
            when = datetime.now(UTC).replace(hour=1, minute=30, second=0, microsecond=0)
            context = build_schedule_context(
                instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
            )
            schedule.evaluate_tick(context)

        rows.append(("daily schedule (pipeline_job_schedule)", *median_ticks(schedule_tick, repeat)))

        selection = AssetSelection.assets(*stages)
        state = {"cursor": None}

        def refresh_tick():
            result = evaluate_automation_conditions(
                defs=defs, instance=instance, asset_selection=selection, cursor=state["cursor"]
            )
            state["cursor"] = result.cursor
            return result

        refresh_tick()
        instance.report_runless_asset_event(
            AssetMaterialization(AssetKey("uid_model"), tags={DATA_VERSION_TAG: f"v{time.time()}"})
        )
        start = time.perf_counter()
        requested = refresh_tick().total_requested
        changed = time.perf_counter() - start
        first, idle = median_ticks(refresh_tick, repeat)
        rows.append((f"model_refresh_sensor (model change: {requested} requested in {changed:.2f} s)", first, idle))
    for name, first, idle in rows:
        print(f"  {name:<72} first {first:6.3f} s   idle {idle:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--annotation-mb", type=int, default=553)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--start-date", type=date.fromisoformat, default=date(2020, 1, 1))
    parser.add_argument(CHILD, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days, args.repeat)
        return
    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory(prefix="ticks-bench-") as tmp:
        for factor in (1, 2):
            root = Path(tmp) / f"x{factor}"
            start_date = today - (today - args.start_date) * factor
            days = args.days * factor
            t0 = time.perf_counter()
            build_store(root / "store", days, args.annotation_mb * factor)
            print(f"\n## {len(DEVICES)} devices, {days * 72 * len(DEVICES):,} image objects, "
                  f"{args.annotation_mb * factor} MB of annotations, partitions from {start_date} "
                  f"({(today - start_date).days * len(DEVICES):,} device-days; store built in "
                  f"{time.perf_counter() - t0:.0f} s)")  # fmt: skip
            env = {**os.environ, "STICKYPI_START_DATE": start_date.isoformat(), "PYTHONWARNINGS": "ignore"}
            subprocess.run(
                [sys.executable, __file__, CHILD, str(root), "--days", str(days), "--repeat", str(args.repeat)],
                env=env, check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
