"""Asset checks: each stage accounts for everything its upstream produced (per device-day, range-aware).

They read the partitions' Parquet objects (the tables' source of truth), so they never wait on the DuckDB
writer lock, and they loop over every partition of a range run like the assets do.
"""

from collections.abc import Callable

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.assets.uid_segmentations import uid_segmentations
from stickypi_assets.orchestration.partitions import DEVICE_DAY, context_partitions
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.raw_images import iter_day_objects
from stickypi_assets.pipeline.taxon_drift import day_drift
from stickypi_assets.storage.tables import CLASSIFICATIONS, IMAGES, INSTANCES, SEGMENTED_IMAGES, TUBOID_FRAMES, TUBOIDS
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse

MAX_LISTED = 20


def _column(warehouse: Warehouse, table: str, partition: PartitionKey, column: str) -> pd.Series:
    rows = warehouse.read_partition_parquet(table, partition)
    return rows[column] if len(rows) else pd.Series([], dtype=object)


def _exactly_once(expected: set, found: pd.Series, missing: str, repeated: str) -> list[str]:
    """Keys of ``expected`` absent from ``found`` and keys found more than once, as ``missing.format(k)`` and
    ``repeated.format(k, n)`` lines: the rule every check below applies to its own pair of tables."""
    out = [missing.format(k) for k in sorted(expected - set(found))]
    return out + [repeated.format(k, n) for k, n in found.value_counts().items() if n > 1]


def image_index_problems(warehouse: Warehouse, partition: PartitionKey) -> list[str]:
    """Raw image objects of the day without exactly one ``images`` row (uploaded after the day was indexed, or
    deleted since), so a late upload is noticed instead of silently missing from every later stage."""
    stored = {info.key for info in iter_day_objects(warehouse.store, partition.device, partition.date)}
    indexed = _column(warehouse, IMAGES.name, partition, "object_key")
    out = _exactly_once(stored, indexed, "`{}` is in the store but not in table images (uploaded later? re-run the "
                        "day)", "`{}` has {} rows in images")  # fmt: skip
    return out + [f"`{k}` is in table images but no longer in the store" for k in sorted(set(indexed) - stored)]


def segmentation_problems(warehouse: Warehouse, partition: PartitionKey) -> list[str]:
    """Images of the partition without exactly one ``segmented_images`` row."""
    images = set(_column(warehouse, IMAGES.name, partition, "object_key"))
    segmented = _column(warehouse, SEGMENTED_IMAGES.name, partition, "image_key")
    return _exactly_once(images, segmented, "`{}` has no row in segmented_images",
                         "`{}` has {} rows in segmented_images")  # fmt: skip


def tuboid_problems(warehouse: Warehouse, partition: PartitionKey) -> list[str]:
    """Tuboid frames whose instance is not in ``instances``; tuboids whose frame count disagrees."""
    known = set(_column(warehouse, INSTANCES.name, partition, "instance_id"))
    frames = warehouse.read_partition_parquet(TUBOID_FRAMES.name, partition)
    tubs = warehouse.read_partition_parquet(TUBOIDS.name, partition)
    out = []
    if len(frames):
        out += [f"frame `{i}` is not in table instances" for i in sorted(set(frames.instance_id) - known)]
    counts = frames.groupby("tuboid_id").size().to_dict() if len(frames) else {}
    for row in tubs.itertuples(index=False) if len(tubs) else ():
        if counts.get(row.tuboid_id, 0) != row.n_frames:
            out.append(f"tuboid `{row.tuboid_id}` has {counts.get(row.tuboid_id, 0)} frames, not {row.n_frames}")
    return out


def classification_problems(warehouse: Warehouse, partition: PartitionKey) -> list[str]:
    """Tuboids without exactly one ``classifications`` row, and rows of unknown tuboids."""
    tub_ids = set(_column(warehouse, TUBOIDS.name, partition, "tuboid_id"))
    classified = _column(warehouse, CLASSIFICATIONS.name, partition, "tuboid_id")
    out = _exactly_once(tub_ids, classified, "tuboid `{}` has no classification row",
                        "tuboid `{}` has {} classification rows")  # fmt: skip
    out += [f"classification of unknown tuboid `{t}`" for t in sorted(set(classified) - tub_ids)]
    return out


def taxon_drift_problems(warehouse: Warehouse, partition: PartitionKey) -> list[str]:
    """The day's predicted taxa against the model's validation: collapse, low confidence, a taxon never predicted
    (:mod:`stickypi_assets.pipeline.taxon_drift`)."""
    return day_drift(warehouse, warehouse.read_partition_parquet(CLASSIFICATIONS.name, partition)).warnings


def _result(context: AssetCheckExecutionContext, problem: Callable[[Warehouse, PartitionKey], list[str]],
            storage: StickyPiStorage, what: str, severity: AssetCheckSeverity) -> AssetCheckResult:  # fmt: skip
    warehouse = storage.warehouse()
    problems: list[str] = []
    partitions = context_partitions(context)
    for partition in partitions:
        problems += [f"{partition}: {p}" for p in problem(warehouse, partition)]
    listed = "\n".join(f"- {p}" for p in problems[:MAX_LISTED]) + ("\n- …" if len(problems) > MAX_LISTED else "")
    return AssetCheckResult(
        passed=not problems,
        severity=severity,
        description=f"{len(problems)} {what} over {len(partitions)} device-day(s)" if problems else None,
        metadata={"n_problems": len(problems), "n_partitions": len(partitions),
                  "problems": MetadataValue.md(listed or "none")},  # fmt: skip
    )


def device_day_check(
    asset: AssetsDefinition, name: str, description: str,
    problem: Callable[[Warehouse, PartitionKey], list[str]], what: str,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetChecksDefinition:  # fmt: skip
    """A partitioned check of ``asset`` that lists, per device-day of the run, what ``problem`` finds."""

    @asset_check(asset=asset, name=name, partitions_def=DEVICE_DAY, description=description)
    def _check(context: AssetCheckExecutionContext, storage: StickyPiStorage) -> AssetCheckResult:
        return _result(context, problem, storage, what, severity)

    return _check


CHECKS = [
    device_day_check(
        raw_images, "every_raw_image_is_indexed",
        "Every raw image object of the day has exactly one row in table images (late uploads show here).",
        image_index_problems, "raw image objects not indexed exactly once",
    ),
    device_day_check(
        uid_segmentations, "every_image_has_a_segmentation_row",
        "Every image of the day has a segmentation row (instances found, or the error recorded).",
        segmentation_problems, "images without exactly one segmentation row",
    ),
    device_day_check(
        tuboids, "tuboid_frames_reference_instances",
        "Every tuboid frame references an instance of table instances, and every tuboid has its frames.",
        tuboid_problems, "tuboid frames without an instance or tuboids without frames",
    ),
    device_day_check(
        classifications, "every_tuboid_has_one_classification",
        "Every tuboid of the day has exactly one classification row (a label, or why not).",
        classification_problems, "tuboids without exactly one classification",
    ),
    device_day_check(
        classifications, "taxon_drift",
        "The day's predicted taxa look like the model's validation: no collapse onto one taxon, no taxon predicted "
        "with low confidence, none of its usual taxa never predicted (a warning: the model may not transfer).",
        taxon_drift_problems, "taxon drift warnings", AssetCheckSeverity.WARN,
    ),
]  # fmt: skip
