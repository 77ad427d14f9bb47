"""The code location: assets, checks, jobs, schedules, sensors and resources. Nothing else."""

from __future__ import annotations

from dagster import Definitions

from stickypi_assets.ml.stages import STAGES
from stickypi_assets.orchestration.assets.active_learning import ACTIVE_LEARNING_ASSETS
from stickypi_assets.orchestration.assets.checks import CHECKS
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.models import MODEL_ASSETS
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.assets.uid_segmentations import uid_segmentations
from stickypi_assets.orchestration.automation.annotation_sensors import ANNOTATION_SENSORS
from stickypi_assets.orchestration.automation.device_sensor import device_discovery_sensor
from stickypi_assets.orchestration.automation.jobs import JOBS
from stickypi_assets.orchestration.automation.model_refresh import model_refresh_sensor
from stickypi_assets.orchestration.automation.schedules import SCHEDULES
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage

defs = Definitions(
    assets=[raw_images, uid_segmentations, tuboids, classifications, *ACTIVE_LEARNING_ASSETS, *MODEL_ASSETS.values()],
    asset_checks=CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[device_discovery_sensor, *ANNOTATION_SENSORS, *filter(None, [model_refresh_sensor()])],
    resources={
        "storage": StickyPiStorage(),
        **{stage.model_asset: ModelResource(stage=name) for name, stage in STAGES.items()},
    },
)
