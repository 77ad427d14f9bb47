"""Asset ``tuboids``: the SIM tracks each device-day's instances into tuboids, continuing day D-1's tracks.

Day D depends on its own segmentations (identity) and on ``tuboids`` of D-1 (self-dependency): an insect
caught at 23:40 is the same tuboid after midnight. The hand-over is the track state D-1 stored
(:mod:`stickypi_assets.pipeline.tuboids`), so a re-run of D reads exactly what D-1 left and gives the same ids.

Backfills: with one run per partition, a self-dependent asset advances one day per daemon tick. The asset
therefore has ``BackfillPolicy.single_run()``: a backfill over a date range is one run per device that
walks the days in order, passing the state from day to day in memory (DAGSTER_NOTES.md). Select one
device (or a few) × a date range; Dagster groups a range along the dimension with fewer selected keys.

Dagster (1.13) does not order a backfill's runs by this self-dependency: with more devices than days it makes
one run per date and submits them together, and with one run per partition it may even launch day D before
D-1 is requested. So the tracks never silently restart: when D-1 has images but no state, D waits while a run
is tracking D-1 (``wait_for_previous_day_s``), and otherwise fails saying what to do, unless its run config
says ``start_without_previous_day`` (D-1 without images, e.g. a device's first day, simply starts fresh).
"""

from collections import defaultdict
from datetime import date, timedelta

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetPartitionStatus,
    Config,
    DimensionPartitionMapping,
    Failure,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    MultiPartitionMapping,
    TimeWindowPartitionMapping,
)
from pydantic import Field

from stickypi_assets.ml.sim.tracking import TrackState
from stickypi_assets.orchestration.assets.metadata import (
    hourly_bars_markdown,
    path_or_count,
    per_item,
    problems_markdown,
)
from stickypi_assets.orchestration.assets.stage_asset import stage_asset
from stickypi_assets.orchestration.partitions import DEVICE_DAY, context_partitions, multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.tuboids import day_has_images, load_state, track_device_day, wait_for_state
from stickypi_assets.storage.keys import sim_state_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.tables import SEGMENTED_IMAGES, TUBOID_FRAMES, TUBOIDS
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse

PREVIOUS_DAY = MultiPartitionMapping(
    {
        "device": DimensionPartitionMapping("device", IdentityPartitionMapping()),
        "date": DimensionPartitionMapping(
            "date",
            TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True),
        ),
    }
)


class TuboidsConfig(Config):
    """What to do when the previous day's tracks are not there (run configuration; backfills use the defaults)."""

    wait_for_previous_day_s: float = Field(
        default=3600.0,
        description="how long to wait while another run is tracking the previous day (Dagster does not order the "
        "runs of a backfill by day when it makes one run per date)",
    )
    start_without_previous_day: bool = Field(
        default=False,
        description="track the day even though the previous day has images but was never tracked: its tracks "
        "then start afresh (insects already on the card get new ids)",
    )


def _previous_state(
    context: AssetExecutionContext,
    config: TuboidsConfig,
    warehouse: Warehouse,
    store: ObjectStore,
    device: str,
    previous: date,
    partition: PartitionKey,
) -> tuple[TrackState | None, str]:
    """D-1's state from the store, waiting for a run that is tracking D-1; fails rather than break the tracks."""
    state = load_state(store, device, previous)
    if state is not None:
        return state, "from the store"
    if not day_has_images(warehouse, device, previous):
        return None, "none: no images on D-1, tracks start fresh"
    key = str(multi_partition_key(device, previous))

    def in_progress() -> bool:
        status = context.instance.get_status_by_partition(AssetKey("tuboids"), [key], DEVICE_DAY) or {}
        return status.get(key) == AssetPartitionStatus.IN_PROGRESS

    if in_progress():
        context.log.info(f"{partition}: waiting for another run to track {key} (its state hands the tracks over)")
        state = wait_for_state(store, device, previous, in_progress=in_progress,
                               timeout_s=config.wait_for_previous_day_s)  # fmt: skip
        if state is not None:
            return state, "from the store, after waiting for the run tracking D-1"
    if config.start_without_previous_day:
        return None, "none: D-1 has images but was not tracked; started fresh (start_without_previous_day)"
    raise Failure(
        description=f"{partition}: the previous day {key} has images but its tuboids were never tracked (or the run "
        f"tracking it did not finish within {config.wait_for_previous_day_s:.0f} s), so the tracks of insects already "
        "on the card cannot continue. Materialize that day first, or backfill one device over the date range; to "
        "track this day alone anyway, run it with config start_without_previous_day: true."
    )


@stage_asset(
    model="sim_model",
    upstream="uid_segmentations",
    extra_deps=[AssetDep("tuboids", partition_mapping=PREVIOUS_DAY)],
    group="sim",
    description=(
        "Tuboids (one insect over time) per device-day, continuing the tracks of the previous day: folders in "
        "the original layout under tiled_tuboids/, a video under sim_videos/, tables `tuboids` and "
        "`tuboid_frames`. Backfill one device over a date range: it runs as one run walking the days in order."
    ),
)
def tuboids(
    context: AssetExecutionContext, storage: StickyPiStorage, sim_model: ModelResource, config: TuboidsConfig
) -> MaterializeResult:
    warehouse, store = storage.warehouse(), storage.object_store()
    matcher, sim_config, version = sim_model.load()
    by_device = defaultdict(list)
    for partition in context_partitions(context):
        by_device[partition.device].append(partition)
    totals = {"tuboids": 0, "frames": 0, "continued": 0, "open": 0, "seconds": 0.0, "instances": 0}
    errors: list[tuple[str, str]] = []
    handovers: list[str] = []
    new_hours: list[int] = []
    videos: list[str] = []
    with warehouse.deferred_publish():  # one publish for all days of a range run
        for device, partitions in sorted(by_device.items()):
            carried = None  # state of the previous day of this run, if it is in the run
            for partition in sorted(partitions, key=lambda p: p.date):
                previous = partition.date - timedelta(days=1)
                if carried is not None and carried[0] == previous:
                    state, how = carried[1], "from this run"
                else:
                    state, how = _previous_state(context, config, warehouse, store, device, previous, partition)
                if state is not None and state.crop_size != sim_config.crop_size:
                    how = f"discarded: {state.crop_size} px crops, the model uses {sim_config.crop_size} px"
                    state = None
                n_open = len(state.tracks) if state is not None else 0
                segmented = warehouse.read_partition_parquet(SEGMENTED_IMAGES.name, partition)
                day = track_device_day(store, segmented, matcher, sim_config, version, device=device,
                                       day=partition.date, state=state, run_id=context.run.run_id)  # fmt: skip
                warehouse.write_partition(TUBOID_FRAMES.name, partition, day.frames, publish=False)
                warehouse.write_partition(TUBOIDS.name, partition, day.tuboids)
                carried = (partition.date, day.state)
                n_cont = int(day.tuboids["continued"].sum()) if len(day.tuboids) else 0
                totals["tuboids"] += len(day.tuboids)
                totals["continued"] += n_cont
                totals["open"] += len(day.state.tracks)
                totals["frames"] += day.n_frames
                totals["instances"] += len(day.frames)
                totals["seconds"] += day.seconds
                errors += day.errors
                if len(day.tuboids):
                    fresh = day.tuboids[~day.tuboids["continued"].astype(bool)]
                    new_hours += [t.hour for t in fresh["track_first_seen"]]
                if day.video_key:
                    videos.append(day.video_key)
                handovers.append(
                    f"- {partition}: D-1 state {how} ({n_open} open tracks) → "
                    f"{len(day.state.tracks)} open at midnight (`{sim_state_key(device, partition.date)}`)"
                )
                context.log.info(
                    f"{partition}: {len(day.tuboids)} tuboids ({n_cont} continued from D-1) over {day.n_frames} frames "
                    f"in {day.seconds:.1f} s; D-1 state {how}"
                )
    return MaterializeResult(
        metadata={
            "dagster/row_count": totals["tuboids"],
            "n_tuboids": totals["tuboids"],
            "n_continued_from_previous_day": totals["continued"],
            "n_open_at_midnight": totals["open"],
            "n_frames": totals["frames"],
            "n_tuboid_instances": totals["instances"],
            "seconds_per_frame": per_item(totals["seconds"], totals["frames"], 3),
            "model_version": version,
            "day_handover": MetadataValue.md("\n".join(handovers[:50])),
            "captures_per_hour": hourly_bars_markdown(new_hours, "new tuboids (captures) per UTC hour"),
            "video": path_or_count(store, videos),
            "unreadable_svgs": problems_markdown(errors),
        }
    )
