"""Run the SIM on one device-day of UID segmentations (no Dagster: used by the asset and usable from notebooks).

Inputs: the day's rows of table ``segmented_images`` (each ``status='ok'`` row names its UID annotation SVG)
and the track state the previous day left (:class:`~stickypi_assets.ml.sim.tracking.TrackState`, ``None`` on a
device's first day). Outputs, all in the object store:

* ``tiled_tuboids/<device>.<day start>.<day end>.<version>/<folder id>/{metadata.txt, tuboid.jpg, context.jpg}``
  (the original layout, reference 4.8) and the series' ``tracks.json``;
* ``sim_videos/<device>/<device>.<date>.mp4``: the day's frames with numbered boxes;
* ``sim_state/<device>/<device>.<date>.json``: the open tracks at midnight, which day D+1 continues;

and the rows of tables ``tuboids`` and ``tuboid_frames``. An SVG that cannot be read is recorded and the
day goes on without that frame.

Re-running a day replaces its objects: the new ones are written first, then the day's objects the new run
did not produce (e.g. a series named after an older model version) are removed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from stickypi_assets.formats.names import format_datetime
from stickypi_assets.formats.tuboids import TuboidId
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import Frame, Matcher
from stickypi_assets.ml.sim.predict import frame_from_svg, track_day
from stickypi_assets.ml.sim.tracking import TrackState
from stickypi_assets.pipeline.uid_segmentations import polygon_wkt
from stickypi_assets.storage.keys import (
    day_start,
    sim_state_key,
    sim_video_key,
    tuboid_day_prefix,
    tuboid_folder_key,
    tuboid_key,
)
from stickypi_assets.storage.object_store import ObjectNotFound, ObjectStore
from stickypi_assets.storage.tables import IMAGES, SEGMENTED_IMAGES
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse, WarehouseError

log = logging.getLogger(__name__)

def load_state(store: ObjectStore, device: str, day: date) -> TrackState | None:
    """The state day ``day`` left (``None`` when that day was never tracked)."""
    try:
        return TrackState.from_json(store.get_bytes(sim_state_key(device, day)))
    except ObjectNotFound:
        return None


def wait_for_state(
    store: ObjectStore,
    device: str,
    day: date,
    *,
    in_progress: Callable[[], bool],
    timeout_s: float,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TrackState | None:
    """The state ``day`` left, waiting (up to ``timeout_s``) while ``in_progress()`` says a run is tracking it.

    Why: Dagster's backfills do not order the runs of a multi-partitioned self-dependent asset (seen with
    dagster 1.13: a backfill of more devices than days makes one run per date, submitted together), so the run
    of day D can start while day D-1 is still being tracked by another run. Waiting for D-1's state keeps the
    tracks continuous instead of silently starting them afresh.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = load_state(store, device, day)
        if state is not None:
            return state
        if not in_progress() or time.monotonic() >= deadline:
            return load_state(store, device, day)  # that run may have finished between the two looks
        sleep(poll_s)


def day_has_images(warehouse: Warehouse, device: str, day: date) -> bool:
    """Whether the device took usable images on ``day`` (so its tracks must be handed to the next day)."""
    for table in (SEGMENTED_IMAGES.name, IMAGES.name):
        try:
            rows = warehouse.read_partition_parquet(table, PartitionKey(device, day))
        except WarehouseError:  # that partition was never written
            continue
        if (rows["status"] == "ok").any():
            return True
    return False


@dataclass
class DayTuboids:
    """Rows of tables ``tuboids`` and ``tuboid_frames`` for one device-day, and what happened."""

    tuboids: pd.DataFrame
    frames: pd.DataFrame
    state: TrackState
    n_frames: int
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    video_key: str | None = None


def _frames_of_day(
    store: ObjectStore, segmented: pd.DataFrame, errors: list[tuple[str, str]]
) -> tuple[list[Frame], dict[str, tuple[str, str]]]:
    """Tracker frames from the day's UID SVGs (unreadable ones recorded in ``errors``) and key → (image, svg)."""
    frames: list[Frame] = []
    keys: dict[str, tuple[str, str]] = {}
    ok = segmented[segmented["status"] == "ok"] if len(segmented) else segmented
    for row in ok.sort_values("datetime").itertuples(index=False) if len(ok) else ():
        stem = f"{row.device}.{format_datetime(row.datetime.to_pydatetime())}"
        try:
            frame = frame_from_svg(store.get_bytes(row.svg_key), stem)
        except Exception as exc:  # one bad SVG never kills the day
            message = f"{type(exc).__name__}: {exc}"
            log.warning("cannot track %s: %s", row.svg_key, message)
            errors.append((row.svg_key, message))
            continue
        frames.append(frame)
        keys[stem] = (row.image_key, row.svg_key)
    return frames, keys


def track_device_day(
    store: ObjectStore,
    segmented: pd.DataFrame,
    matcher: Matcher,
    config: SimConfig,
    model_version: str,
    *,
    device: str,
    day: date,
    state: TrackState | None,
    run_id: str | None = None,
    video: bool = True,
) -> DayTuboids:
    """Track one device-day continuing ``state`` and write its tuboids, video and state to ``store``."""
    t0 = time.perf_counter()
    errors: list[tuple[str, str]] = []
    frames, keys = _frames_of_day(store, segmented, errors)
    start = day_start(day)
    written: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="stickypi-sim-") as tmp:
        root = Path(tmp) / "tuboids"
        video_path = Path(tmp) / "day.mp4"
        out = track_day(
            frames,
            device,
            start,
            matcher,
            config,
            state=state,
            version=model_version,
            tuboid_root=root,
            video_path=video_path if video else None,
        )
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = tuboid_key(path.relative_to(root).as_posix())
            store.put_file(key, path)
            written.add(key)
        vkey = None
        if out.video is not None:
            vkey = sim_video_key(device, day)
            store.put_file(vkey, out.video, content_type="video/mp4")
    out.result.state.model_version = model_version
    state = out.result.state.to_json().encode("utf-8")
    store.put_bytes(sim_state_key(device, day), state, content_type="application/json")
    for info in store.list(tuboid_day_prefix(device, day)):
        if info.key not in written:
            store.delete(info.key)
    if vkey is None and store.exists(sim_video_key(device, day)):  # no frame today: no video, not a stale one
        store.delete(sim_video_key(device, day))

    series = TuboidId(
        device=device, start=start, end=start + timedelta(days=1), version=model_version, index=0
    ).series_id
    records = {r.index: r for r in out.records}
    tuboid_rows, frame_rows = [], []
    common = {"device": device, "date": day, "model_version": model_version, "run_id": run_id}
    for tub in out.result.tuboids:
        rec = records.get(tub.index)
        obs = tub.observations
        areas = [float(o.instance.area) for o in obs]
        scores = [o.score for o in obs if o.score is not None]
        folder_id = rec.tuboid_id if rec else None
        tuboid_rows.append(common | {
            "tuboid_id": tub.track_id,
            "folder_id": folder_id,
            "folder_key": tuboid_folder_key(series, folder_id) if rec and rec.directory is not None else None,
            "not_written_reason": rec.reason if rec else "not written",
            "track_first_seen": tub.head_datetime,
            "first_seen": obs[0].datetime,
            "last_seen": obs[-1].datetime,
            "n_frames": len(obs),
            "n_frames_total": tub.n_frames_total,
            "continued": tub.continued,
            "open": tub.open,
            "head_x": tub.head_centroid[0],
            "head_y": tub.head_centroid[1],
            "median_area": float(np.median(areas)),
            "max_length": float(max(max(o.instance.bbox[2], o.instance.bbox[3]) for o in obs)),
            "mean_match_score": float(np.mean(scores)) if scores else None,
        })  # fmt: skip
        for k, o in enumerate(obs):
            x, y, w, h = o.instance.bbox
            image_key, svg_key = keys[o.frame.key]
            frame_rows.append(common | {
                "tuboid_id": tub.track_id, "frame_index": k, "datetime": o.datetime, "image_key": image_key,
                "svg_key": svg_key, "instance_id": f"{o.frame.key}.{o.index:04d}",
                "polygon_wkt": polygon_wkt(o.instance.polygon), "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
                "area": float(o.instance.area), "match_score": o.score,
            })  # fmt: skip
    return DayTuboids(
        tuboids=pd.DataFrame(tuboid_rows),
        frames=pd.DataFrame(frame_rows),
        state=out.result.state,
        n_frames=len(frames),
        seconds=time.perf_counter() - t0,
        stats=dict(out.result.stats),
        errors=errors,
        video_key=vkey,
    )
