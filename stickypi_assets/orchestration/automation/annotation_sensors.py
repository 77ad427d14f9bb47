"""Sensors that retrain a model when its annotations change in the object store.

Each tick lists ``annotations/<stage>/`` and fingerprints the annotation set by content (sorted keys with
their md5s): a new or changed file changes the fingerprint, a re-upload of the same bytes does not (nor does
a file's modification time). The cursor, which Dagster keeps in its instance storage across daemon
restarts, is the fingerprint last acted on; the run key is ``<stage>-<fingerprint>``, so even a lost cursor
cannot trigger the same training twice. Listing the whole prefix each tick (a few thousand annotation files
at most) avoids the traps of ``LastModified``-based cursors (1 s resolution, deleted ``since_key``).

A set of annotations the current model version was trained on (its registration's data manifest) requests
nothing either, whatever the cursor: a fresh daemon (or a fresh Dagster instance after ``stickypi demo``) does
not retrain models on the data they already learnt. Going back to an annotation set that was trained on
before (A → B → A) does not retrain either, since run key ``<stage>-A`` was used: promote the version trained on
A (``stickypi models promote``) or materialize ``<stage>_model`` by hand. A training that failed is retried by
materializing the model asset, or by the next change of the annotations.

With ``STICKYPI_RETRAIN_EVERY_N`` = N > 1 (Dataiku's retrain-every-N-labels), a stage with a current model waits
until N annotation items (an SVG, a tuboid folder, a ``database.db``) were added, changed or removed since the data
that model was trained on; until then each tick says how many there are, and the cursor does not move. A stage
without a model trains on its first annotations.
"""

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from stickypi_assets.lifecycle.registry import data_fingerprint
from stickypi_assets.lifecycle.training import annotation_manifest, changed_items
from stickypi_assets.ml.stages import STAGES, get_stage
from stickypi_assets.orchestration.automation.jobs import model_training_job
from stickypi_assets.orchestration.resources import StickyPiStorage


def annotation_sensor(stage: str) -> SensorDefinition:
    """``<stage>_annotations_sensor``: requests ``<stage>_model`` once per change of the stage's annotations."""
    spec = get_stage(stage)
    prefix = spec.annotation_prefix

    @sensor(
        name=f"{stage}_annotations_sensor",
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        job=model_training_job,  # each run selects this stage's model asset only
        description=f"Retrains {spec.model_asset} when the annotations under {prefix} change (content, not upload "
        "time).",
    )
    def _sensor(context: SensorEvaluationContext, storage: StickyPiStorage):
        manifest = annotation_manifest(storage.object_store(), stage)
        if not manifest:
            return SkipReason(f"no annotations under {prefix}")
        fingerprint = data_fingerprint(manifest)
        if fingerprint == context.cursor:
            return SkipReason(f"annotations under {prefix} unchanged ({len(manifest)} files, {fingerprint})")
        current = storage.registry().current(stage)
        if current is not None and data_fingerprint(current.data_manifest) == fingerprint:
            return SensorResult(
                skip_reason=f"the current {stage} model {current.version[:8]} was trained on these {len(manifest)} "
                f"annotation files ({fingerprint})",
                cursor=fingerprint,
            )
        every_n = storage.settings().retrain_every_n
        if current is not None and every_n > 1:
            changed = changed_items(manifest, current.data_manifest)
            if len(changed) < every_n:  # the cursor stays: the next tick counts again
                return SkipReason(
                    f"{len(changed)} annotation item(s) under {prefix} changed since the current {stage} model "
                    f"{current.version[:8]}; retraining after {every_n} (STICKYPI_RETRAIN_EVERY_N)"
                )
        context.log.info(f"{len(manifest)} annotation files under {prefix}, fingerprint {fingerprint}: retraining")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"{stage}-{fingerprint}",
                    asset_selection=[AssetKey(spec.model_asset)],
                    tags={"stickypi/annotations": fingerprint},
                )
            ],
            cursor=fingerprint,
        )

    return _sensor


ANNOTATION_SENSORS = [annotation_sensor(stage) for stage in STAGES]
