"""Daily schedules: yesterday's partition of every known device through the whole chain.

Built with ``build_schedule_from_partitioned_job`` on ``pipeline_job`` (raw_images → uid_segmentations →
tuboids → classifications; the analysts' views follow the tables): at 01:30 UTC each day it requests one run
per device for the last complete UTC day, with ``run_key`` = the partition key, so a daemon restart never
runs a day twice. 01:30 leaves devices that upload in batches time to deliver the day's last images.
"""

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job

from stickypi_assets.orchestration.automation.jobs import annotation_queue_job, pipeline_job, scoring_job


def _daily(job, hour: int, description: str) -> ScheduleDefinition:
    """Yesterday's partitions of ``job`` at ``hour``:30 UTC, running from the start (one run key per partition)."""
    return build_schedule_from_partitioned_job(
        job, hour_of_day=hour, minute_of_hour=30, default_status=DefaultScheduleStatus.RUNNING, description=description
    )


daily_pipeline_schedule = _daily(
    pipeline_job, 1, "At 01:30 UTC: yesterday's device-day of every known device through the whole chain."
)
daily_scoring_schedule = _daily(
    scoring_job, 3, "At 03:30 UTC: yesterday's device-days scored for annotation (after the chain)."
)

annotation_queue_schedule = ScheduleDefinition(
    job=annotation_queue_job,
    cron_schedule="30 5 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="At 05:30 UTC: the annotation queue's statuses and next batch, from the day's scores.",
)

SCHEDULES = [daily_pipeline_schedule, daily_scoring_schedule, annotation_queue_schedule]
