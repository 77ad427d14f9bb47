"""Asset jobs (selections of the device × day assets, and the model trainings); schedules, sensors and the demo
run them."""

from dagster import define_asset_job

from stickypi_assets.orchestration.assets.active_learning import annotation_queue, image_scores, tuboid_scores
from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.models import MODEL_ASSETS
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

#: The trainings: a run selects the model asset(s) to train, so every training shows under this job in the UI
#: (the annotation sensors and the demo target it), not as an anonymous ``__ephemeral_asset_job__``.
model_training_job = define_asset_job(
    "model_training_job",
    selection=list(MODEL_ASSETS.values()),
    description="Train, validate and register models from the annotations (a run selects the stages to train).",
)

scoring_job = define_asset_job(
    "scoring_job",
    selection=[image_scores, tuboid_scores],
    description="Active learning: score device-days for annotation (MC dropout of the UID and the ITC).",
)
annotation_queue_job = define_asset_job(
    "annotation_queue_job",
    selection=[annotation_queue],
    description="Active learning: update the annotation queue (statuses, the next batch, pre-annotations).",
)

JOBS = [ingest_job, uid_job, sim_job, itc_job, segmentation_job, pipeline_job, model_training_job, scoring_job,
        annotation_queue_job]  # fmt: skip

#: The code location's name (``workspace.yaml``, ``pyproject.toml``'s ``[tool.dagster]``). Runs executed in a
#: process of their own (the demo) carry the repository label the UI filters a job's runs, the timeline and the
#: partition pages by, ``<repository>@<location>``, so they show there like runs the daemon launched.
CODE_LOCATION = "stickypi_assets"
REPOSITORY_LABEL = {".dagster/repository": f"__repository__@{CODE_LOCATION}"}
