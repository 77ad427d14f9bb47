"""The code location: assets, checks, jobs, schedules, sensors and resources. Nothing else."""

from __future__ import annotations

from dagster import Definitions

from stickypi_assets.orchestration.assets.checks import CHECKS
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.models import itc_model, sim_model, uid_model
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.assets.uid_segmentations import uid_segmentations
from stickypi_assets.orchestration.automation.annotation_sensors import ANNOTATION_SENSORS
from stickypi_assets.orchestration.automation.device_sensor import device_discovery_sensor
from stickypi_assets.orchestration.automation.jobs import JOBS
from stickypi_assets.orchestration.automation.schedules import daily_pipeline_schedule
from stickypi_assets.orchestration.conditions import model_refresh_sensor
from stickypi_assets.orchestration.resources import (
    ItcModelResource,
    SimModelResource,
    StickyPiStorage,
    UidModelResource,
)

defs = Definitions(
    assets=[raw_images, uid_segmentations, tuboids, classifications, uid_model, sim_model, itc_model],
    asset_checks=CHECKS,
    jobs=JOBS,
    schedules=[daily_pipeline_schedule],
    sensors=[device_discovery_sensor, *ANNOTATION_SENSORS, *filter(None, [model_refresh_sensor()])],
    resources={
        "storage": StickyPiStorage(),
        "uid_model": UidModelResource(),
        "sim_model": SimModelResource(),
        "itc_model": ItcModelResource(),
    },
)
