"""Change-aware inference over the frames of one device: run the detector only on the tiles that changed.

A sticky card changes little between two frames 20 minutes apart: most insects stay where they were stuck, so
re-running Mask R-CNN on every tile of every frame mostly recomputes what is known. :class:`ChangeAwarePredictor`
keeps, per tile of the grid, the candidates (polygons in image pixels, before the cross-tile merge) of the last
frame the detector ran on that tile and a reference thumbnail of it. For each new frame:

1. the frame becomes a grey thumbnail ``CHANGE_DOWNSCALE`` times smaller (area averaging: JPEG noise averages
   out) divided by its own median (a global change of brightness is not a change of the card);
2. a **full pass** (every tile) runs on the first frame, after ``CHANGE_FULL_EVERY - 1`` frames without one, when
   the median brightness moved by more than ``CHANGE_ILLUMINATION`` of the last full pass's (the night flash,
   dawn: the comparison is rebased on the new lighting) or when the frame size changed;
3. otherwise a tile is **changed** when at least ``CHANGE_MIN_PIXELS`` thumbnail pixels of its window differ from
   its reference by more than ``CHANGE_PIXEL_THRESHOLD`` (an insect arriving, one moving, the card shifting);
   the detector runs on the changed tiles only, their candidates and references are replaced, and the other
   tiles' candidates are **carried over** unchanged;
4. all tiles' candidates go through the same cross-tile merge as a full pass (:func:`merge_candidates`), so a frame
   where nothing changed gives exactly the instances of the pass it carries over.

State changes only once the detector has run on every tile it had to: a frame whose inference fails leaves the
predictor as it was, and a frame that cannot be decoded never reaches it. Each instance says which frame's pass
found it (``carried_from``; ``None`` = this frame), which table ``instances`` records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import Detector
from stickypi_assets.ml.uid.postprocess import Candidate, candidates_to_instances, detect_tiles, merge_candidates
from stickypi_assets.ml.uid.tiling import Tile, pad_image, plan_tiles


@dataclass
class FramePrediction:
    """One frame's instances (best score first), where each came from, and how much of the frame was run."""

    instances: list[Instance]
    #: Per instance: the ``frame_id`` of the earlier frame whose pass found it, or ``None`` (found on this frame).
    carried_from: list[str | None]
    n_tiles: int
    tiles_run: list[int] = field(default_factory=list)
    #: Why every tile ran (``first frame``, ``every 12 frames``, ``illumination change``, ...); ``None`` when
    #: only the changed tiles did.
    full_pass: str | None = None


def thumbnail(image: np.ndarray, downscale: int) -> tuple[np.ndarray, float]:
    """``(grey thumbnail divided by its median, that median)`` of a BGR uint8 frame (see the module docstring)."""
    height, width = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    size = (max(1, width // downscale), max(1, height // downscale))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    median = max(float(np.median(small)), 1.0)
    return small / median, median


_NEIGHBOURS = np.ones((3, 3), np.uint8)


def _unexplained(image: np.ndarray, other: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels of ``image`` darker than every pixel around them in ``other`` (3 x 3), or brighter, by more than
    ``threshold``: a pixel that a neighbour explains is no change, so a camera shake of a pixel or two is none."""
    return (image < cv2.erode(other, _NEIGHBOURS) - threshold) | (image > cv2.dilate(other, _NEIGHBOURS) + threshold)


class ChangeAwarePredictor:
    """Predicts the frames of one device in time order, re-running only changed tiles (module docstring).

    One instance per device and day (or folder of one device): call :meth:`predict` frame after frame;
    :meth:`reset` forgets everything (the next frame gets a full pass). With ``CHANGE_AWARE: false`` every frame
    gets a full pass, and the result is that of :func:`~stickypi_assets.ml.uid.predict.predict_image`.
    """

    def __init__(self, detector: Detector, config: UidConfig) -> None:
        self.detector, self.config = detector, config
        self.reset()

    def reset(self) -> None:
        self._size: tuple[int, int] | None = None
        self._median = 1.0
        self._since_full = 0
        self._candidates: dict[int, list[Candidate]] = {}
        self._source: dict[int, str] = {}
        self._reference: dict[int, np.ndarray] = {}

    def _full_pass_reason(self, size: tuple[int, int], median: float) -> str | None:
        config = self.config
        if not config.change_aware:
            return "change-aware inference off"
        if self._size is None:
            return "first frame"
        if size != self._size:
            return "frame size changed"
        if self._since_full + 1 >= config.change_full_every:
            return f"every {config.change_full_every} frames"
        if abs(median / self._median - 1.0) > config.change_illumination:
            return "illumination change"
        return None

    def _window(self, tile: Tile, thumb: np.ndarray) -> np.ndarray:
        """The thumbnail pixels under ``tile`` (tiles are in padded-image pixels, the thumbnail in image ones)."""
        f, pad = self.config.change_downscale, self.config.original_image_padding
        height, width = thumb.shape
        x0 = min(max(tile.x - pad, 0) // f, width - 1)
        y0 = min(max(tile.y - pad, 0) // f, height - 1)
        x1 = max(min(-(-(tile.x + tile.width - pad) // f), width), x0 + 1)  # ceil, within the thumbnail
        y1 = max(min(-(-(tile.y + tile.height - pad) // f), height), y0 + 1)
        return thumb[y0:y1, x0:x1]

    def _changed(self, tile: Tile, thumb: np.ndarray) -> bool:
        reference = self._reference.get(tile.index)
        current = self._window(tile, thumb)
        if reference is None or reference.shape != current.shape:
            return True
        threshold = self.config.change_pixel_threshold
        # both ways: something new (current unexplained by the reference) or something gone (the reverse)
        changed = _unexplained(current, reference, threshold) | _unexplained(reference, current, threshold)
        return int(changed.sum()) >= self.config.change_min_pixels

    def predict(self, image: np.ndarray, frame_id: str, *, timings=None) -> FramePrediction:
        """Instances of a BGR uint8 frame; ``frame_id`` (e.g. its object key) names it in ``carried_from``."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a BGR (H, W, 3) image, got shape {image.shape}")
        config = self.config
        height, width = image.shape[:2]
        padded = pad_image(image, config.original_image_padding)
        tiles = plan_tiles(padded.shape[1], padded.shape[0], config.tile_size, config.tile_overlap)
        # no thumbnail when every frame gets a full pass anyway
        thumb, median = thumbnail(image, config.change_downscale) if config.change_aware else (None, 1.0)
        reason = self._full_pass_reason((width, height), median)
        run = tiles if reason else [t for t in tiles if self._changed(t, thumb)]
        fresh, model_s, post_s = detect_tiles(self.detector, padded, run, config, (width, height))
        # every tile it had to run has run: only now does the frame become the state
        t1 = time.perf_counter()
        if reason:
            self.reset()
            self._size, self._median = (width, height), median
        else:
            self._since_full += 1
        for tile in run:
            self._candidates[tile.index] = fresh[tile.index]
            self._source[tile.index] = frame_id
            if thumb is not None:
                self._reference[tile.index] = self._window(tile, thumb).copy()
        candidates = [c for tile in tiles for c in self._candidates.get(tile.index, [])]
        merged = merge_candidates(candidates, config.merge_iou)
        carried = [None if self._source[c.tile_index] == frame_id else self._source[c.tile_index] for c in merged]
        if timings is not None:
            timings.model += model_s
            timings.postprocess += post_s + time.perf_counter() - t1
            timings.images += 1
            timings.tiles += len(run)
            timings.tiles_carried += len(tiles) - len(run)
        return FramePrediction(candidates_to_instances(merged, config), carried, len(tiles), [t.index for t in run],
                               reason)  # fmt: skip
