"""Assets of the learning loop: per device-day scores of what annotating would teach the models, and the queue.

* ``image_scores`` (after ``uid_segmentations``): maskAL certainty of every segmented image by MC dropout of the
  current UID (backbone and RPN once per tile, the ROI heads ``STICKYPI_AL_PASSES`` times), table ``image_scores``;
* ``tuboid_scores`` (after ``classifications``): margin, entropy, BALD and frame disagreement of every tuboid folder
  by MC dropout of the current ITC, and the folders the day's taxon drift warnings point at, table
  ``tuboid_scores``;
* ``annotation_queue`` (unpartitioned, over all scored days): the next batch of images and tuboids under
  ``STICKYPI_AL_IMAGE_BUDGET`` / ``STICKYPI_AL_TUBOID_BUDGET`` from the mixes ``STICKYPI_AL_IMAGE_MIX`` /
  ``STICKYPI_AL_TUBOID_MIX``, their pre-annotations, and the statuses of what was asked before
  (:mod:`stickypi_assets.pipeline.annotation_queue`).

The score assets re-run with their stage (a new model re-scores the recent days); the queue runs daily after them
(schedule ``annotation_queue_schedule``) or by hand.
"""


from collections.abc import Callable

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, MaterializeResult, MetadataValue, asset

from stickypi_assets.active.mc_dropout import DEFAULT_DROPOUT
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.lifecycle.learning_loop import model_states
from stickypi_assets.orchestration.assets.metadata import StatusTally, per_item, problems_markdown
from stickypi_assets.orchestration.assets.stage_asset import stage_asset, upstream_days
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.al_rounds import STAGE, read_rounds, rounds_markdown, stalled_warning
from stickypi_assets.pipeline.annotation_queue import QueuePolicy, update_queue
from stickypi_assets.pipeline.day_rows import DayRows
from stickypi_assets.pipeline.image_scores import score_image_day
from stickypi_assets.pipeline.taxon_drift import registered_validation
from stickypi_assets.pipeline.tuboid_scores import score_tuboid_day
from stickypi_assets.storage.tables import (
    CLASSIFICATIONS,
    IMAGE_SCORES,
    SEGMENTED_IMAGES,
    TUBOID_SCORES,
    TUBOIDS,
    TableSpec,
)
from stickypi_assets.storage.warehouse import PartitionKey

GROUP = "active_learning"


def _top(rows: pd.DataFrame | None, column: str, ascending: bool, n: int = 10) -> MetadataValue | str:
    """The ``n`` items of the last day ranked by ``column`` (the ones the queue will likely ask for)."""
    ok = rows[rows["status"] == "ok"] if rows is not None and len(rows) else None
    if ok is None or not len(ok):
        return "none"
    top = ok.sort_values(column, ascending=ascending).head(n)
    lines = "\n".join(f"| `{r.item}` | {getattr(r, column):.3f} |" for r in top.itertuples(index=False))
    return MetadataValue.md(f"| item | {column} |\n|---|---|\n{lines}")


def _score_days(
    context: AssetExecutionContext,
    storage: StickyPiStorage,
    upstream: TableSpec,
    table: TableSpec,
    score_day: Callable[[PartitionKey, pd.DataFrame], DayRows],
    what: str,
) -> tuple[dict, pd.DataFrame | None]:
    """Score each device-day of the run from its ``upstream`` rows into ``table``; the common metadata and the
    last day's rows."""
    warehouse = storage.warehouse()
    tally = StatusTally({"ok": "n_scored", "error": "n_errors"})
    seconds, last = 0.0, None
    with warehouse.deferred_publish():
        for partition, rows in upstream_days(context, warehouse, upstream):
            day = score_day(partition, rows)
            warehouse.write_partition(table.name, partition, day.rows)
            tally.add(day)
            seconds += day.seconds
            last = day.rows
            context.log.info(f"{partition}: {day.count('ok')} {what}s scored in {day.seconds:.0f} s")
    metadata = {
        "dagster/row_count": tally.total,
        **tally.metadata(),
        "passes": storage.settings().al_passes,
        f"seconds_per_{what}": per_item(seconds, tally["ok"], 4),
        "errors": problems_markdown(tally.errors),
    }
    return metadata, last


@stage_asset(
    model="uid_model",
    upstream="uid_segmentations",
    group=GROUP,
    description=(
        "How much annotating each segmented image of the device-day would teach the UID: maskAL certainty over "
        "MC-dropout passes (box-only for all, with masks for the least certain fifth), detections, embedding; "
        "table `image_scores`."
    ),
)
def image_scores(
    context: AssetExecutionContext, storage: StickyPiStorage, uid_model: ModelResource
) -> MaterializeResult:
    store = storage.object_store()
    detector, config, version = uid_model.load()
    sampler = McDropoutMaskRCNN(detector, config, passes=storage.settings().al_passes, dropout=DEFAULT_DROPOUT)
    metadata, last = _score_days(
        context, storage, SEGMENTED_IMAGES, IMAGE_SCORES,
        lambda p, rows: score_image_day(store, rows, sampler, version, device=p.device, day=p.date,
                                        run_id=context.run.run_id),
        "image",
    )  # fmt: skip
    return MaterializeResult(
        metadata={**metadata, "model_version": version, "least_certain": _top(last, "maskal_certainty", True)}
    )


@stage_asset(
    model="itc_model",
    upstream="classifications",
    group=GROUP,
    extra_deps=[AssetDep("tuboids")],
    description=(
        "How much annotating each tuboid folder of the device-day would teach the ITC: margin, entropy, BALD "
        "and least confidence over MC-dropout passes, and the disagreement between the tuboid's own frames; "
        "top-3 candidate labels; table `tuboid_scores`."
    ),
)
def tuboid_scores(
    context: AssetExecutionContext, storage: StickyPiStorage, itc_model: ModelResource
) -> MaterializeResult:
    store = storage.object_store()
    classifier, _, version = itc_model.load()
    passes, warehouse = storage.settings().al_passes, storage.warehouse()
    validation = registered_validation(warehouse, version)  # the drift signals' reference, once per run
    metadata, last = _score_days(
        context, storage, TUBOIDS, TUBOID_SCORES,
        lambda p, rows: score_tuboid_day(
            store, rows, classifier, version, device=p.device, day=p.date, passes=passes, run_id=context.run.run_id,
            classified=warehouse.read_partition_parquet(CLASSIFICATIONS.name, p), validation=validation),
        "tuboid",
    )  # fmt: skip
    contested = _top(last, "margin", False)
    return MaterializeResult(metadata={**metadata, "model_version": version, "most_contested": contested})


def batch_markdown(batch) -> str:
    """The new batch as a table (what the annotators are asked for, and why)."""
    if not len(batch):
        return "nothing new to ask for"
    lines = "\n".join(
        f"| {r.kind} | `{r.item}` | {r.sampler} | {r.reason} | `{r.pre_annotation_key}` |"
        for r in batch.itertuples(index=False)
    )
    return f"| kind | item | sampler | reason | pre-annotation |\n|---|---|---|---|---|\n{lines}"


@asset(
    deps=[AssetDep("image_scores"), AssetDep("tuboid_scores")],
    group_name=GROUP,
    kinds={"duckdb"},
    description=(
        "The next images and tuboids to annotate (table `annotation_queue`: item, kind, device, date, score, "
        "sampler, reason, status), with pre-annotations under `pre_annotations/`; marks items `annotated` once "
        "their annotation is under `annotations/`. Never asks for an item twice."
    ),
)
def annotation_queue(context: AssetExecutionContext, storage: StickyPiStorage) -> MaterializeResult:
    policy = QueuePolicy.from_settings(storage.settings())
    store, warehouse = storage.object_store(), storage.warehouse()
    update = update_queue(store, warehouse, policy, models=model_states(store, storage.registry(), warehouse))
    for kind, why in update.skipped.items():
        context.log.info(f"no new {kind} batch: {why}")
    rounds = read_rounds(storage.warehouse())
    warnings = [w for stage in STAGE.values() if (w := stalled_warning(rounds, stage))]
    for warning in warnings:
        context.log.warning(warning)
    q = update.queue
    counts = {f"n_{kind}s_{status}": int(((q["kind"] == kind) & (q["status"] == status)).sum()) if len(q) else 0
              for kind in ("image", "tuboid") for status in ("queued", "annotated")}  # fmt: skip
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(q),
            "n_new": len(update.new),
            "n_newly_annotated": update.newly_annotated,
            **counts,
            "new_batch": MetadataValue.md(batch_markdown(update.new)),
            "not_asked": MetadataValue.md("\n".join(f"* {k}: {v}" for k, v in update.skipped.items()) or "none"),
            "problems": problems_markdown(update.problems),
            "n_new_rounds": len(update.rounds),
            **{f"{stage}_rounds": MetadataValue.md(rounds_markdown(rounds, stage)) for stage in STAGE.values()},
            **({"warning": MetadataValue.md("\n\n".join(warnings))} if warnings else {}),
        }
    )


ACTIVE_LEARNING_ASSETS = [image_scores, tuboid_scores, annotation_queue]
