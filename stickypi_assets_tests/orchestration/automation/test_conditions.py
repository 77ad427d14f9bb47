"""A model change re-runs the recent days of the stages that depend on it, once; older days wait for a backfill."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DefaultSensorStatus,
    evaluate_automation_conditions,
    instance_for_test,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from stickypi_assets.definitions import defs
from stickypi_assets.orchestration.automation.model_refresh import model_refresh_sensor
from stickypi_assets.orchestration.conditions import refresh_on_model_change
from stickypi_assets.orchestration.partitions import multi_partition_key

DEVICES = ["0a5bb6f4", "1b2c3d4e"]
NOW = datetime(2020, 6, 30, 12, 0, tzinfo=UTC)
STAGES = {k: AssetKey(k) for k in ("uid_segmentations", "tuboids", "classifications")}


def recent(days: int = 7, devices: list[str] = DEVICES) -> set[str]:
    last = date(2020, 6, 29)  # the last complete day at NOW
    return {str(multi_partition_key(d, last - timedelta(days=k))) for d in devices for k in range(days)}


def new_version(instance, model: str, version: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset_key=model, tags={DATA_VERSION_TAG: version}))


def materialized(instance, stage: str, keys: set[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=stage, partition=key))


def test_model_changes_request_recent_partitions_once():
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("devices", DEVICES)
        old = {str(multi_partition_key(d, date(2020, 6, 10))) for d in DEVICES}  # before the last 7 days
        for stage in STAGES:
            materialized(instance, stage, recent() | old)
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW)
        assert tick.total_requested == 0  # no model yet: nothing to refresh

        new_version(instance, "uid_model", "v1")
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW, cursor=tick.cursor)
        for key in STAGES.values():  # a new UID re-runs the three stages of the last 7 days of both devices
            assert set(tick.get_requested_partitions(key)) == recent(), key
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW, cursor=tick.cursor)
        assert tick.total_requested == 0  # handled: not requested again

        new_version(instance, "uid_model", "v1")  # a retrain that was not promoted: same current version
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW, cursor=tick.cursor)
        assert tick.total_requested == 0

        new_version(instance, "itc_model", "c2")  # a new ITC only re-runs the classifications
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW, cursor=tick.cursor)
        assert set(tick.get_requested_partitions(STAGES["classifications"])) == recent()
        assert not tick.get_requested_partitions(STAGES["tuboids"])
        assert not tick.get_requested_partitions(AssetKey("raw_images"))


def test_only_partitions_materialized_before_are_refreshed():
    """A new device's days (or days never processed) are not started by a model change: their inputs may not exist."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("devices", DEVICES)
        first, second = DEVICES
        materialized(instance, "uid_segmentations", recent(devices=[first]) | recent(3, devices=[second]))
        materialized(instance, "tuboids", recent(devices=[first]) | recent(3, devices=[second]))
        materialized(instance, "classifications", recent(devices=[first]))
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW)
        new_version(instance, "uid_model", "v1")
        tick = evaluate_automation_conditions(defs, instance, evaluation_time=NOW, cursor=tick.cursor)
        expected = recent(devices=[first]) | recent(3, devices=[second])
        assert set(tick.get_requested_partitions(STAGES["uid_segmentations"])) == expected
        assert set(tick.get_requested_partitions(STAGES["tuboids"])) == expected
        assert set(tick.get_requested_partitions(STAGES["classifications"])) == recent(devices=[first])


def test_the_refresh_runs_by_default_and_can_be_turned_off(monkeypatch):
    assert defs.resolve_sensor_def("model_refresh_sensor").default_status == DefaultSensorStatus.RUNNING
    monkeypatch.setenv("STICKYPI_AUTO_REFRESH_DAYS", "0")
    assert model_refresh_sensor() is None and refresh_on_model_change("uid_model") is None
    monkeypatch.setenv("STICKYPI_AUTO_REFRESH_DAYS", "soon")
    with pytest.raises(ValueError, match="STICKYPI_AUTO_REFRESH_DAYS"):
        refresh_on_model_change("uid_model")
