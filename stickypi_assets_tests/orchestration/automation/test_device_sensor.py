"""Device discovery: one partition per canonical device folder; an upper-case twin is reported, never added."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from stickypi_assets.orchestration.automation.device_sensor import device_discovery_sensor
from stickypi_assets.orchestration.resources import StickyPiStorage


def test_an_upper_case_device_folder_does_not_become_a_second_device(tmp_path: Path, capfd):
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"))
    store = storage.object_store()
    store.put_bytes("raw_images/0a1b2c3d/0a1b2c3d.2020-06-20_10-00-00.jpg", b"jpeg")
    store.put_bytes("raw_images/0A1B2C3D/0A1B2C3D.2020-06-20_10-00-00.jpg", b"jpeg")
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, resources={"storage": storage}) as context:
        result = device_discovery_sensor(context)
    assert isinstance(result, SensorResult)
    [request] = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["0a1b2c3d"]
    logged = capfd.readouterr().err  # the sensor logs through Dagster, whose handler writes to stderr
    assert "0A1B2C3D" in logged and "lower-case" in logged
    instance.add_dynamic_partitions("devices", ["0a1b2c3d"])
    with build_sensor_context(instance=instance, resources={"storage": storage}) as context:
        assert isinstance(device_discovery_sensor(context), SkipReason)
