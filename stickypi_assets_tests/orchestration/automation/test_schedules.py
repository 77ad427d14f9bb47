"""The daily schedule requests yesterday's partition of every known device, once."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import build_schedule_context, instance_for_test

from stickypi_assets.definitions import defs
from stickypi_assets.orchestration.partitions import multi_partition_key

DEVICES = ["0a5bb6f4", "1b2c3d4e"]


def test_schedule_tick_requests_yesterday_for_every_device():
    schedule = defs.resolve_schedule_def("pipeline_job_schedule")
    assert schedule.cron_schedule == "30 1 * * *" and schedule.execution_timezone in (None, "UTC")
    tick = datetime(2020, 6, 22, 1, 30, tzinfo=UTC)
    with instance_for_test() as instance:  # a persistent test instance: the tick loads dynamic partitions from it
        instance.add_dynamic_partitions("devices", DEVICES)
        with build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        ) as ctx:
            requests = schedule.evaluate_tick(ctx).run_requests
    wanted = {str(multi_partition_key(d, datetime(2020, 6, 21).date())) for d in DEVICES}
    assert {r.partition_key for r in requests} == wanted
    assert {r.run_key for r in requests} == wanted  # deterministic: a restarted daemon does not run a day twice
    assert all(r.job_name in (None, "pipeline_job") for r in requests)
