"""The raw_images asset and the device sensor, materialized in-process on real images."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context, materialize

from stickypi_assets.definitions import defs
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.automation.device_sensor import device_discovery_sensor
from stickypi_assets.orchestration.partitions import DEVICES, multi_partition_key
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets_tests.conftest import stickypi_path


@pytest.fixture
def storage(tmp_path: Path) -> StickyPiStorage:
    res = StickyPiStorage(
        store_url=str(tmp_path / "store"),
        warehouse_path=str(tmp_path / "wh.duckdb"),
        published_path=str(tmp_path / "published.duckdb"),
    )
    store = res.object_store()
    for f in sorted(stickypi_path("raw").rglob("*.jpg")):
        store.put_file(f"raw_images/{f.parent.name}/{f.name}", f)
    store.put_bytes("raw_images/0a5bb6f4/0a5bb6f4.2020-06-20_23-59-00.jpg", b"\xff\xd8\xff truncated")
    store.put_bytes("raw_images/bad|name/x.jpg", b"")
    return res


def test_definitions_load():
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("ingest_job") is not None


def test_sensor_adds_new_devices_once(storage: StickyPiStorage):
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, resources={"storage": storage}) as ctx:
        result = device_discovery_sensor(ctx)
    assert isinstance(result, SensorResult)
    (request,) = result.dynamic_partitions_requests
    assert request.partitions_def_name == "devices"
    assert sorted(request.partition_keys) == ["0a5bb6f4", "1b74105a", "5c173ff2"]  # 'bad|name' rejected
    instance.add_dynamic_partitions(DEVICES.name, list(request.partition_keys))  # the daemon applies it
    with build_sensor_context(instance=instance, resources={"storage": storage}) as ctx:
        again = device_discovery_sensor(ctx)
    assert "no new devices" in str(again.skip_message)


def test_materialize_records_errors_and_is_idempotent(storage: StickyPiStorage):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", ["0a5bb6f4", "1b74105a"])
    key = multi_partition_key("0a5bb6f4", date(2020, 6, 20))
    for _ in range(2):  # re-materializing replaces the partition's rows
        result = materialize([raw_images], partition_key=key, instance=instance, resources={"storage": storage})
        assert result.success
    mats = result.asset_materializations_for_node("raw_images")
    meta = mats[0].metadata
    assert meta["n_ok"].value == 5 and meta["n_errors"].value == 1
    assert "truncated" in meta["errors"].value or "corrupt" in meta["errors"].value
    warehouse = storage.warehouse()
    df = warehouse.query("SELECT status, count(*) n FROM images GROUP BY ALL ORDER BY status", published=True)
    assert df.to_dict("list") == {"status": ["error", "ok"], "n": [1, 5]}
    other = multi_partition_key("1b74105a", date(2020, 7, 5))
    assert materialize([raw_images], partition_key=other, instance=instance, resources={"storage": storage}).success
    assert int(warehouse.query("SELECT count(*) n FROM images")["n"][0]) == 8


@pytest.mark.s3
def test_materialize_against_s3_store(s3_endpoint, tmp_path: Path):
    """Production path: images in an S3-compatible bucket, settings from the environment only."""
    store = s3_endpoint.store()
    for f in sorted(stickypi_path("raw", "1b74105a").glob("*.jpg")):
        store.put_file(f"raw_images/1b74105a/{f.name}", f)
    storage = StickyPiStorage(
        warehouse_path=str(tmp_path / "wh.duckdb"), published_path=str(tmp_path / "published.duckdb")
    )
    assert storage.object_store().uri("x").startswith("s3://")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", ["1b74105a"])
    key = multi_partition_key("1b74105a", date(2020, 7, 5))
    assert materialize([raw_images], partition_key=key, instance=instance, resources={"storage": storage}).success
    rows = storage.warehouse().query("SELECT status, width FROM images", published=True)
    assert rows.to_dict("list") == {"status": ["ok", "ok"], "width": [2592, 2592]}
    assert store.exists("warehouse/images/device=1b74105a/date=2020-07-05/part.parquet")
