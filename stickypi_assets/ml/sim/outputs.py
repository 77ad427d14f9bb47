"""SIM outputs: tiled tuboid folders (reference 4.8) and a video of the tracks per device and window.

**Tuboid folders** are written with :func:`stickypi_assets.formats.tuboids.write_tuboid`, so they are
exactly the original layout: ``<root>/<series_id>/<tuboid_id>/{metadata.txt, tuboid.jpg, context.jpg}``
with ``series_id = <device>.<start>.<end>.<version>`` and ``tuboid_id = <series_id>.<NNNN>``; ``NNNN`` is
the tuboid's index (rank by first-frame time), tiles cover the frames within 24 h of the first, the
context is the tuboid's first frame with its bbox. Each series directory also gets ``tracks.json``
mapping every ``NNNN`` to its stable track id (see :mod:`stickypi_assets.ml.sim.tracking`), whether it
continues a track of an earlier window, and how many frames the track had before.

Tuboids with fewer than 3 frames in the window (a continued track seen briefly, which the track length
filter keeps) cannot be written in this layout; they are listed as skipped with the reason.

Memory: a 224 px tile is 150 kB, and a day of 100 insects x 72 frames would be 1 GB of tiles. Tuboids are
therefore written in groups holding at most ``max_tiles_in_memory`` tiles; each group reads the frames it
needs in time order (a frame is decoded once per group, and once in total when everything fits).

**Video**: one frame per image in time order, each live tuboid's bbox linearly interpolated in time between
its observations (display only, nothing is stored), numbered ``%03d`` with its index, colour from an RNG
seeded by the index, the image name in black at the top left, resized to 1600 x 1200, MPEG-4 (``mp4v``)
at 4 fps, written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stickypi_assets.formats.names import format_datetime
from stickypi_assets.formats.tuboids import (
    MIN_FRAMES_TO_WRITE,
    TILE_SIZE,
    Tuboid,
    TuboidFrame,
    TuboidId,
    draw_context,
    masked_square_tile,
    tile_budget_groups,
    tile_scale,
    within_tile_window,
    write_tuboid,
)
from stickypi_assets.ml.sim.features import Frame
from stickypi_assets.ml.sim.tracking import Observation, TrackedTuboid

log = logging.getLogger(__name__)

TRACKS_FILENAME = "tracks.json"


@dataclass
class WrittenTuboid:
    """Where a tracked tuboid went (``directory`` is ``None`` when it was skipped, with ``reason``)."""

    tuboid_id: str
    track_id: str
    index: int
    n_frames: int
    previous_frames: int
    open: bool
    first_datetime: datetime
    last_datetime: datetime
    directory: Path | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        fields = ("tuboid_id", "track_id", "index", "n_frames", "previous_frames")
        return {field: getattr(self, field) for field in fields} | {
            "continued": self.previous_frames > 0,
            "open": self.open,
            "first_datetime": format_datetime(self.first_datetime),
            "last_datetime": format_datetime(self.last_datetime),
            "written": self.directory is not None,
            "reason": self.reason,
        }


def bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return image


def _within_tile_window(obs: Sequence[Observation]) -> list[bool]:
    return within_tile_window([o.datetime for o in obs])


def write_tuboids(
    root: str | Path,
    tuboids: Sequence[TrackedTuboid],
    device: str,
    start: datetime,
    end: datetime,
    version: str | None,
    *,
    max_tiles_in_memory: int = 2048,
) -> list[WrittenTuboid]:
    """Write every tuboid under ``root/<device>.<start>.<end>[.<version>]/`` and its ``tracks.json``.

    ``start``/``end`` name the series (for a day partition: the day's midnight and the next one);
    ``version`` is the SIM model version (``None`` gives legacy 4-field ids). Returns one record per tuboid.
    """
    root = Path(root)
    records: list[WrittenTuboid] = []
    writable: list[tuple[TrackedTuboid, TuboidId]] = []
    series_id = None
    for tub in sorted(tuboids, key=lambda t: t.index):
        tid = TuboidId(device=device, start=start, end=end, version=version, index=tub.index)
        series_id = tid.series_id
        rec = WrittenTuboid(
            tuboid_id=str(tid), track_id=tub.track_id, index=tub.index, n_frames=len(tub),
            previous_frames=tub.previous_frames, open=tub.open, first_datetime=tub.observations[0].datetime,
            last_datetime=tub.observations[-1].datetime,
        )
        records.append(rec)
        n_tiles = sum(_within_tile_window(tub.observations))
        if len(tub) < MIN_FRAMES_TO_WRITE or n_tiles < 2:
            rec.reason = f"{len(tub)} frame(s) in this window; a tuboid folder needs at least {MIN_FRAMES_TO_WRITE}"
            continue
        writable.append((tub, tid))
    by_index = {r.index: r for r in records}

    groups = tile_budget_groups(writable, lambda item: sum(_within_tile_window(item[0].observations)),
                                max_tiles_in_memory)  # fmt: skip
    for group in groups:
        needed: dict[str, Frame] = {}
        for tub, _ in group:
            for o in tub.observations:
                needed[o.frame.key] = o.frame
        tiles: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        contexts: dict[int, bytes] = {}
        wanted: dict[str, list[tuple[int, int, Observation, bool]]] = {}
        for g, (tub, _) in enumerate(group):
            for k, (o, tile) in enumerate(zip(tub.observations, _within_tile_window(tub.observations), strict=True)):
                wanted.setdefault(o.frame.key, []).append((g, k, o, tile))
        for key in sorted(needed, key=lambda k: (needed[k].datetime, k)):
            frame = needed[key]
            image = bgr(frame.load_image())
            h, w = image.shape[:2]
            for g, k, o, tile in wanted[key]:
                polygon = o.instance.polygon
                if tile:
                    tiles[(g, k)] = masked_square_tile(image, polygon, size=TILE_SIZE)
                else:
                    tiles[(g, k)] = (np.empty(0), tile_scale(polygon, w, h))
                if k == 0:
                    contexts[g] = draw_context(image, o.instance.bbox)
            del image
        for g, (tub, tid) in enumerate(group):
            frames, tile_list = [], []
            for k, o in enumerate(tub.observations):
                tile, scale = tiles[(g, k)]
                cx, cy = o.instance.centroid
                frames.append(TuboidFrame(device=device, datetime=o.datetime, centroid_x=cx, centroid_y=cy,
                                          scale=scale))
                if tile.size:
                    tile_list.append(tile)
            rec = by_index[tub.index]
            try:
                rec.directory = write_tuboid(root, Tuboid(id=tid, frames=frames, tiles=tile_list,
                                                          context_jpeg=contexts.get(g)))
            except Exception as exc:  # noqa: BLE001 - one bad tuboid must not lose the others
                rec.reason = str(exc)
                log.warning("tuboid %s not written: %s", tid, exc)
    if series_id is not None:
        series_dir = root / series_id
        series_dir.mkdir(parents=True, exist_ok=True)
        _atomic_text(series_dir / TRACKS_FILENAME, json.dumps([r.to_dict() for r in records], indent=1))
    return records


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------- video


def interpolated_bbox(tub: TrackedTuboid, when: datetime) -> tuple[float, float, float, float] | None:
    """The tuboid's bbox at ``when``, linear in time between its observations; ``None`` outside its span."""
    obs = tub.observations
    if not obs or when < obs[0].datetime or when > obs[-1].datetime:
        return None
    for a, b in zip(obs, obs[1:], strict=False):
        if a.datetime <= when <= b.datetime:
            span = (b.datetime - a.datetime).total_seconds()
            f = 0.0 if span <= 0 else (when - a.datetime).total_seconds() / span
            ba, bb = np.array(a.instance.bbox, float), np.array(b.instance.bbox, float)
            return tuple(ba + f * (bb - ba))  # type: ignore[return-value]
    return tuple(float(v) for v in obs[-1].instance.bbox)  # type: ignore[return-value]


def tuboid_colour(index: int) -> tuple[int, int, int]:
    g, r = np.random.default_rng(index).integers(0, 256, size=2)
    return 255, int(g), int(r)


def write_video(
    path: str | Path,
    frames: Sequence[Frame],
    tuboids: Sequence[TrackedTuboid],
    *,
    size: tuple[int, int] = (1600, 1200),
    fps: float = 4.0,
) -> Path:
    """MPEG-4 video of ``frames`` (time order) with every live tuboid's numbered, interpolated bbox."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix or '.mp4'}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video to {tmp}")
    font = cv2.FONT_HERSHEY_SIMPLEX
    try:
        for frame in sorted(frames, key=lambda f: (f.datetime, f.key)):
            image = bgr(frame.load_image()).copy()
            for tub in tuboids:
                box = interpolated_bbox(tub, frame.datetime)
                if box is None:
                    continue
                x, y, w, h = (int(round(v)) for v in box)
                colour = tuboid_colour(tub.index)
                cv2.rectangle(image, (x, y), (x + w, y + h), colour, 3)
                cv2.putText(image, f"{tub.index:03d}", (x + w, y + h), font, 1.5, colour, 3)
            cv2.putText(image, frame.key, (0, 30), font, 1.5, (0, 0, 0), 3)
            writer.write(cv2.resize(image, tuple(size)))
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    writer.release()
    os.replace(tmp, path)
    return path


def video_name(device: str, frames: Sequence[Frame]) -> str:
    """``<device>.<first>.<last>.mp4`` as in the original standalone tool."""
    times = sorted(f.datetime for f in frames)
    return f"{device}.{format_datetime(times[0])}.{format_datetime(times[-1])}.mp4"
