"""The code location: assets, checks, jobs, schedules, sensors and resources. Nothing else."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from stickypi_assets.assets.classifications import classifications
from stickypi_assets.assets.raw_images import raw_images
from stickypi_assets.assets.tuboids import tuboids
from stickypi_assets.assets.uid_segmentations import uid_segmentations
from stickypi_assets.automation.device_sensor import device_discovery_sensor
from stickypi_assets.resources import ItcModelResource, SimModelResource, StickyPiStorage, UidModelResource

ingest_job = define_asset_job("ingest_job", selection=[raw_images], description="Index raw images.")
uid_job = define_asset_job("uid_job", selection=[uid_segmentations], description="Run the UID on indexed images.")
sim_job = define_asset_job("sim_job", selection=[tuboids], description="Track segmented instances into tuboids.")
itc_job = define_asset_job("itc_job", selection=[classifications], description="Classify tuboids.")
segmentation_job = define_asset_job(
    "segmentation_job", selection=[raw_images, uid_segmentations], description="Index images, then run the UID."
)
pipeline_job = define_asset_job(
    "pipeline_job",
    selection=[raw_images, uid_segmentations, tuboids, classifications],
    description="The whole chain for device-days: index images, segment them, track instances, classify tuboids.",
)

defs = Definitions(
    assets=[raw_images, uid_segmentations, tuboids, classifications],
    jobs=[ingest_job, uid_job, sim_job, itc_job, segmentation_job, pipeline_job],
    sensors=[device_discovery_sensor],
    resources={
        "storage": StickyPiStorage(),
        "uid_model": UidModelResource(),
        "sim_model": SimModelResource(),
        "itc_model": ItcModelResource(),
    },
)
