"""``stickypi demo``: the platform on its own synthetic sample, with no configuration and no services.

It generates a small multi-device, multi-day time-lapse (with a few deliberately corrupt frames) into the
embedded object store, lets the device sensor discover the devices, materializes ``raw_images`` for every
device-day through Dagster (persisted in the repository's Dagster instance when ``DAGSTER_HOME`` is set, so
``make ui`` shows the runs) and prints what landed in the warehouse.
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context

from stickypi_assets.automation.device_sensor import device_discovery_sensor
from stickypi_assets.definitions import defs
from stickypi_assets.ingest import image_days
from stickypi_assets.partitions import DEVICES, multi_partition_key
from stickypi_assets.resources import StickyPiStorage
from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import ObjectStore

DEMO_START = date(2020, 6, 20)
#: Runs still log everything to the instance (visible in the UI); only the console copy is quieted.
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEMO_WIDTH, DEMO_HEIGHT = 1296, 972  # half the Sticky Pi resolution keeps the demo quick on 2 cores


def generate_sample(store: ObjectStore, *, devices: int, days: int, seed: int) -> dict:
    """Write the synthetic sample (images + ground truth) into ``store``; returns the manifest summary."""
    from stickypi_assets.synth import SynthConfig, generate

    config = SynthConfig(
        devices=devices,
        days=days,
        start_date=DEMO_START,
        seed=seed,
        width=DEMO_WIDTH,
        height=DEMO_HEIGHT,
        corrupt_frames=1,
    )
    return generate(config, store)


def _instance() -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return DagsterInstance.get()
    return DagsterInstance.ephemeral()


def run_demo(*, devices: int = 2, days: int = 2, seed: int = 1) -> int:
    settings = Settings.from_env()
    storage = StickyPiStorage()
    store = storage.object_store()
    print(f"stickypi demo: data root {settings.data_root}")
    print(f"  object store : {store.describe()}")
    print(f"  warehouse    : {settings.warehouse_path} (analysts: {settings.published_path})")

    t0 = time.perf_counter()
    summary = generate_sample(store, devices=devices, days=days, seed=seed)
    n_images = sum(1 for _ in store.list("raw_images/"))
    print(f"\n[1/3] generated {n_images} synthetic images in {time.perf_counter() - t0:.1f} s: {summary}")

    instance = _instance()
    with build_sensor_context(instance=instance, resources={"storage": storage}) as ctx:
        result = device_discovery_sensor(ctx)
    new = [k for r in getattr(result, "dynamic_partitions_requests", []) for k in r.partition_keys]
    if new:
        instance.add_dynamic_partitions(DEVICES.name or "devices", new)
    known = instance.get_dynamic_partitions(DEVICES.name or "devices")
    print(f"[2/3] device sensor: {len(new)} new device(s); known devices {known}")

    job = defs.resolve_job_def("ingest_job")
    t0 = time.perf_counter()
    n_runs = 0
    for device in known:
        for day in image_days(store, device):
            key = multi_partition_key(device, day)
            run = job.execute_in_process(partition_key=key, instance=instance, run_config=QUIET_RUN)
            mat = run.asset_materializations_for_node("raw_images")[0].metadata
            n_runs += 1
            print(
                f"      raw_images[{device}|{day}]: {mat['n_ok'].value} ok, {mat['n_errors'].value} errors, "
                f"{mat['n_duplicates'].value} duplicates"
            )
    print(f"[3/3] materialized {n_runs} partitions in {time.perf_counter() - t0:.1f} s")

    warehouse = storage.warehouse()
    table = warehouse.query(
        'SELECT device, "date", count(*) AS images, count(*) FILTER (status = \'ok\') AS ok, '
        "count(*) FILTER (status = 'error') AS errors, min(datetime) AS first, max(datetime) AS last "
        "FROM images GROUP BY ALL ORDER BY ALL",
        published=True,
    )
    print("\nTable images, per device-day (from the published DuckDB copy):")
    print(table.to_string(index=False))
    errors = warehouse.query(
        "SELECT object_key, error FROM images WHERE status <> 'ok' ORDER BY object_key", published=True
    )
    if len(errors):
        print("\nRecorded (not fatal) bad images:")
        print(errors.to_string(index=False))
    print(
        "\nNext: `make ui` opens Dagster at http://127.0.0.1:3000 on these runs;\n"
        f"      `.venv/bin/stickypi warehouse sql \"SELECT * FROM images LIMIT 5\"` queries {settings.published_path}"
    )
    return 0
