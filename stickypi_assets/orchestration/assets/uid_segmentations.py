"""Asset ``uid_segmentations``: the UID on each device-day → SVGs, tables ``instances`` and ``segmented_images``."""

from dagster import AssetExecutionContext, MaterializeResult

from stickypi_assets.orchestration.assets.metadata import (
    StatusTally,
    hourly_bars_markdown,
    path_or_count,
    per_item,
    problems_markdown,
)
from stickypi_assets.orchestration.assets.stage_asset import stage_asset, upstream_days
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
        "per image in `segmented_images`. Tiles unchanged since an earlier frame keep that frame's detections "
        "(change-aware inference: `carried_from`, `tiles_run`). An image that fails is recorded, not fatal."
    ),
)
def uid_segmentations(
    context: AssetExecutionContext, storage: StickyPiStorage, uid_model: ModelResource
) -> MaterializeResult:
    warehouse, store = storage.warehouse(), storage.object_store()
    detector, config, version = uid_model.load()
    tally = StatusTally({"ok": "n_images", "error": "n_failed_images", "skipped": "n_skipped_images"})
    n_instances, seconds, tiles_run, tiles_carried = 0, 0.0, 0, 0
    hours: list[int] = []
    prefixes: list[str] = []
    with warehouse.deferred_publish():  # one publish for all days of a range run
        for partition, images in upstream_days(context, warehouse, IMAGES):
            day = segment_device_day(
                store, images, detector, config, version,
                device=partition.device, day=partition.date, run_id=context.run.run_id,
            )  # fmt: skip
            warehouse.write_partition(INSTANCES.name, partition, day.instances, publish=False)
            warehouse.write_partition(SEGMENTED_IMAGES.name, partition, day.images)
            tally.add(day)
            n_instances += len(day.instances)
            seconds += day.timings.total
            tiles_run, tiles_carried = tiles_run + day.timings.tiles, tiles_carried + day.timings.tiles_carried
            if len(day.instances):
                hours += day.instances["datetime"].dt.tz_convert("UTC").dt.hour.tolist()
            prefixes.append(uid_annotation_day_prefix(partition.device, partition.date))
            context.log.info(
                f"{partition}: {len(day.instances)} instances in {day.count('ok')} images "
                f"({day.count('error')} failed, {day.count('skipped')} skipped) "
                f"-> {uid_annotation_day_prefix(partition.device, partition.date)}"
            )
    return MaterializeResult(
        metadata={
            "dagster/row_count": n_instances,
            "n_instances": n_instances,
            **tally.metadata(),
            "seconds_per_image": per_item(seconds, tally["ok"], 3),
            # change-aware inference: the share of tiles whose detections were carried over from an earlier frame
            "tiles_carried_over": per_item(tiles_carried, tiles_run + tiles_carried, 3),
            "model_version": version,
            "failures": problems_markdown(tally.errors),
            "instances_per_hour": hourly_bars_markdown(hours, "instances per UTC hour"),
            "svgs": path_or_count(store, prefixes),
        }
    )
