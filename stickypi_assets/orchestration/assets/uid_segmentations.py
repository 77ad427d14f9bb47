"""Asset ``uid_segmentations``: the UID on each device-day → SVGs, tables ``instances`` and ``segmented_images``."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from stickypi_assets.orchestration.assets.metadata import hourly_bars_markdown, problems_markdown
from stickypi_assets.orchestration.assets.stage_asset import stage_asset
from stickypi_assets.orchestration.partitions import context_partitions
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.uid_segmentations import segment_device_day
from stickypi_assets.storage.keys import uid_annotation_day_prefix
from stickypi_assets.storage.tables import IMAGES, INSTANCES, SEGMENTED_IMAGES


@stage_asset(
    model="uid_model",
    upstream="raw_images",
    refresh_with_upstream=False,
    group="uid",
    description=(
        "Insect instances per image (UID, Mask R-CNN, tiled at full resolution): one annotation SVG per image under "
        "uid_annotations/<device>/, rows in `instances` (polygon, bbox, area, score, model_version) and one row "
        "per image in `segmented_images`. An image that fails is recorded, not fatal."
    ),
)
def uid_segmentations(
    context: AssetExecutionContext, storage: StickyPiStorage, uid_model: ModelResource
) -> MaterializeResult:
    warehouse, store = storage.warehouse(), storage.object_store()
    detector, config, version = uid_model.load()
    totals = {"images": 0, "instances": 0, "errors": 0, "skipped": 0, "seconds": 0.0}
    errors: list[tuple[str, str]] = []
    hours: list[int] = []
    prefixes: list[str] = []
    with warehouse.deferred_publish():  # one publish for all days of a range run
        for partition in context_partitions(context):
            images = warehouse.read_partition_parquet(IMAGES.name, partition)
            day = segment_device_day(
                store, images, detector, config, version,
                device=partition.device, day=partition.date, run_id=context.run.run_id,
            )  # fmt: skip
            warehouse.write_partition(INSTANCES.name, partition, day.instances, publish=False)
            warehouse.write_partition(SEGMENTED_IMAGES.name, partition, day.images)
            totals["images"] += day.count("ok")
            totals["errors"] += day.count("error")
            totals["skipped"] += day.count("skipped")
            totals["instances"] += len(day.instances)
            totals["seconds"] += day.timings.total
            errors += day.errors
            if len(day.instances):
                hours += day.instances["datetime"].dt.tz_convert("UTC").dt.hour.tolist()
            prefixes.append(uid_annotation_day_prefix(partition.device, partition.date))
            context.log.info(
                f"{partition}: {len(day.instances)} instances in {day.count('ok')} images "
                f"({day.count('error')} failed, {day.count('skipped')} skipped) "
                f"-> {uid_annotation_day_prefix(partition.device, partition.date)}"
            )
    per_image = totals["seconds"] / totals["images"] if totals["images"] else 0.0
    return MaterializeResult(
        metadata={
            "dagster/row_count": totals["instances"],
            "n_images": totals["images"],
            "n_instances": totals["instances"],
            "n_failed_images": totals["errors"],
            "n_skipped_images": totals["skipped"],
            "seconds_per_image": round(per_image, 3),
            "model_version": version,
            "failures": problems_markdown(errors),
            "instances_per_hour": hourly_bars_markdown(hours, "instances per UTC hour"),
            "svgs": MetadataValue.path(store.uri(prefixes[0])) if len(prefixes) == 1 else len(prefixes),
        }
    )
