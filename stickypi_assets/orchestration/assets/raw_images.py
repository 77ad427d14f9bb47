"""Asset ``raw_images``: index each device-day's JPEGs into table ``images``."""


from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    TableColumn,
    TableSchema,
    asset,
)

from stickypi_assets.orchestration.assets.metadata import StatusTally, path_or_count, problems_markdown
from stickypi_assets.orchestration.partitions import DEVICE_DAY, context_partitions
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.raw_images import index_device_day
from stickypi_assets.storage.keys import raw_day_prefix
from stickypi_assets.storage.tables import IMAGES


@asset(
    partitions_def=DEVICE_DAY,
    backfill_policy=BackfillPolicy.single_run(),  # range runs loop over the days (see assets/tuboids.py)
    group_name="ingest",
    kinds={"duckdb", "parquet"},
    description=(
        "One row per raw image object of the device-day (table `images`). Corrupt, truncated, oversized or "
        "misnamed files and unreadable keys are rows with status 'error', never a failed partition."
    ),
)
def raw_images(context: AssetExecutionContext, storage: StickyPiStorage) -> MaterializeResult:
    store, warehouse = storage.object_store(), storage.warehouse()
    # The decode bound comes from the resource's settings (env STICKYPI_MAX_IMAGE_PIXELS), like the store's limits.
    max_image_pixels = storage.settings().max_image_pixels
    tally = StatusTally({"ok": "n_ok", "error": "n_errors", "duplicate": "n_duplicates"})
    warnings: list[tuple[str, str]] = []
    keys = []
    with warehouse.deferred_publish():  # one publish for all days of a range run
        for partition in context_partitions(context):
            index = index_device_day(
                store, partition.device, partition.date, run_id=context.run.run_id, max_image_pixels=max_image_pixels
            )
            result = warehouse.write_partition(IMAGES.name, partition, index.rows)
            tally.add(index)
            warnings += index.warnings
            keys.append(result.parquet_key)
            context.log.info(
                f"{partition}: {index.n_images} images under {raw_day_prefix(partition.device, partition.date)} "
                f"({index.count('ok')} ok, {index.count('error')} errors, {index.count('duplicate')} duplicates)"
            )
    return MaterializeResult(
        metadata={
            "dagster/row_count": tally.total,
            **tally.metadata(),
            "errors": problems_markdown(tally.errors),
            "n_warnings": len(warnings),  # ok images that lost metadata (e.g. an EXIF Make that is no sensor dict)
            "parquet": path_or_count(store, keys),
            "dagster/column_schema": TableSchema(
                columns=[TableColumn(c.name, c.duckdb_type, description=c.description) for c in IMAGES.columns]
            ),
        }
    )
