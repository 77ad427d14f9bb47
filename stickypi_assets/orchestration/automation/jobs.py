"""Asset jobs (selections of the device × day assets); schedules and the demo run them."""

from dagster import define_asset_job

from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.assets.uid_segmentations import uid_segmentations

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

JOBS = [ingest_job, uid_job, sim_job, itc_job, segmentation_job, pipeline_job]
