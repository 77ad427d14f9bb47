"""SIM inference entry points: a bundle's matcher, a device-day of UID SVGs → tuboids, the standalone folder mode.

What a Dagster asset for (device, day D) does, in order (see :func:`track_day`)::

    matcher, config, version = load_matcher(bundle_dir)
    frames = [frame_from_svg(svg_bytes, stem) for each UID segmentation of the device on day D]
    state = TrackState.from_json(state_of_day_D_minus_1) if it exists else None
    day = track_day(frames, device, day_start, matcher, config, state=state, version=version,
                    tuboid_root=root, video_path=...)
    store day.result.state.to_json() as the state of day D; day.records describe the tuboids written

:func:`predict_dir` reproduces the original ``standalone_sim.py predict_dir`` on a folder of
``<device>.<datetime>.svg`` (one device): tuboids in ``<target>/tuboids/`` and a video, refusing to overwrite
unless ``force`` (it also works when no tuboid is found, which crashed the original, defect 19). A curated
``a_<stem>.svg`` is used instead of ``<stem>.svg`` for the same image.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stickypi_assets.formats.names import parse_stem
from stickypi_assets.formats.tuboids import TuboidId
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.sim.candidates import annotation_files
from stickypi_assets.ml.sim.config import SimConfig, bundle_config
from stickypi_assets.ml.sim.features import Frame, PairBatch
from stickypi_assets.ml.sim.model import Matcher, SiameseMatcher, weights_version
from stickypi_assets.ml.sim.outputs import WrittenTuboid, video_name, write_tuboids, write_video
from stickypi_assets.ml.sim.tracking import Tracker, TrackingResult, TrackState

log = logging.getLogger(__name__)


def load_matcher(bundle_dir: str | Path, device: str | torch.device = "cpu") -> tuple[SiameseMatcher, SimConfig, str]:
    """``(matcher, config, version)`` of a trained bundle; version = md5 of ``output/model_final.pth``."""
    bundle_dir = Path(bundle_dir)
    weights = bundle_dir / WEIGHTS_RELPATH
    if not weights.exists():
        raise FileNotFoundError(f"{weights} not found: the SIM bundle has no trained weights")
    config = bundle_config(bundle_dir)
    matcher = SiameseMatcher.load(weights, config=config, device=device)
    return matcher, config, weights_version(weights)


def frame_from_svg(source: str | Path | bytes, stem: str | None = None) -> Frame:
    """A tracker frame from a UID SVG (path or bytes); ``stem`` defaults to the file's stem."""
    if stem is None:
        if isinstance(source, bytes | bytearray):
            raise ValueError("give the stem '<device>.<datetime>' of an SVG read from bytes")
        stem = Path(source).stem
    doc = read_uid_svg(source, name=f"{stem}.svg")
    return Frame.from_uid_svg(doc, stem=stem)


@dataclass
class DayTracks:
    result: TrackingResult
    records: list[WrittenTuboid] = field(default_factory=list)
    video: Path | None = None


def track_day(
    frames: Sequence[Frame],
    device: str,
    day_start: datetime,
    matcher: Matcher,
    config: SimConfig,
    *,
    state: TrackState | None = None,
    version: str | None = None,
    tuboid_root: str | Path | None = None,
    video_path: str | Path | None = None,
    day_length: timedelta = timedelta(days=1),
) -> DayTracks:
    """Track one device-day continuing ``state`` (day D-1's), optionally write tuboids and the video.

    Frames outside ``[day_start, day_start + day_length)`` are rejected: day boundaries are what make the
    state hand-over exact. The series of the written tuboids is ``<device>.<day start>.<day end>.<version>``.
    """
    day_end = day_start + day_length
    outside = [f.key for f in frames if not day_start <= f.datetime < day_end]
    if outside:
        raise ValueError(f"frames outside the day [{day_start}, {day_end}): {outside[:5]}")
    result = Tracker(matcher, config).track(frames, device=device, state=state, end=day_end)
    result.state.model_version = version
    out = DayTracks(result=result)
    if tuboid_root is not None:
        out.records = write_tuboids(tuboid_root, result.tuboids, device, day_start, day_end, version)
    if video_path is not None and frames:
        out.video = write_video(video_path, frames, result.tuboids, size=tuple(config.video_size),
                                fps=config.video_fps)  # type: ignore[arg-type]
    return out


class _ProgressMatcher:
    """A :class:`Matcher` that advances a progress bar by the number of pairs it scores."""

    def __init__(self, matcher: Matcher, bar: tqdm) -> None:
        self.matcher = matcher
        self.bar = bar

    def score_pairs(self, batch: PairBatch) -> np.ndarray:
        scores = self.matcher.score_pairs(batch)
        self.bar.update(len(batch))
        return scores


def predict_dir(bundle_dir: str | Path, target: str | Path, force: bool = False,
                torch_device: str | torch.device | None = None, progress: bool = False) -> DayTracks:
    """Track every ``<device>.<datetime>.svg`` of ``target`` into ``<target>/tuboids/`` (+ video there).

    ``a_<stem>.svg`` (curated) replaces ``<stem>.svg`` when both exist. ``progress`` shows progress bars on
    stderr: one step per frame read, then one per pair of instances scored while tracking.
    """
    target = Path(target)
    files = annotation_files(target)
    names = [parse_stem(stem, check_epoch=False) for stem, _ in files]
    devices = {n.device for n in names}
    if len(devices) != 1:
        raise ValueError(f"{target}: expected SVGs of exactly one device, found {sorted(devices)}")
    device = devices.pop()
    out_root = target / "tuboids"
    if out_root.exists():
        if not force:
            raise FileExistsError(f"{out_root} exists (use force to replace it)")
        shutil.rmtree(out_root)
    matcher, config, version = load_matcher(bundle_dir, device=torch_device or default_torch_device())
    frames = [
        frame_from_svg(path, stem)
        for stem, path in tqdm(files, desc="sim read", unit="frame", disable=not progress, file=sys.stderr)
    ]
    start, end = min(n.datetime for n in names), max(n.datetime for n in names)
    with tqdm(desc="sim track", unit="pair", disable=not progress, file=sys.stderr) as bar:
        result = Tracker(_ProgressMatcher(matcher, bar), config).track(frames, device=device, end=end)
    records = write_tuboids(out_root, result.tuboids, device, start, end, version)
    series_id = TuboidId(device=device, start=start, end=end, version=version, index=0).series_id
    video = write_video(out_root / series_id / video_name(device, frames), frames, result.tuboids,
                        size=tuple(config.video_size), fps=config.video_fps)  # type: ignore[arg-type]
    return DayTracks(result=result, records=records, video=video)


def default_torch_device() -> str:
    """Torch device for inference: the SIM is small and CPU-friendly, so CPU unless CUDA is present."""
    return "cuda" if torch.cuda.is_available() else "cpu"
