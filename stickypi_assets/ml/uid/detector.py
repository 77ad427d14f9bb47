"""What the UID needs from a detection model, without importing torch.

Tiling, post-processing, prediction and validation depend only on these two names, so they can be used
(and tested) with any backend: the torchvision Mask R-CNN of :mod:`stickypi_assets.ml.uid.model`,
detectron2 when installed, a YOLO-seg model or a test double. A detector receives **BGR uint8 tiles** (the
OpenCV convention used everywhere in Sticky Pi) and returns, per tile, boxes, scores, 0-based class
indices and masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class TileDetections:
    """Raw detections of one tile, in tile pixel coordinates, before any Sticky Pi filtering.

    ``boxes`` are ``(K, 4)`` float ``x1, y1, x2, y2`` (continuous coordinates: a box covering pixel
    columns 3..5 is ``x1=3, x2=6``). ``labels`` are 0-based indices into ``UidConfig.class_names``.
    ``masks`` are float probabilities: ``(K, M, M)`` in the frame of each box when ``masks_in_boxes``
    (Mask R-CNN's native output), else ``(K, H, W)`` in the frame of the tile.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    masks_in_boxes: bool = True

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.masks = np.asarray(self.masks, dtype=np.float32)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n or len(self.masks) != n:
            raise ValueError("boxes, scores, labels and masks must have the same length")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, mask_size: int = 28) -> TileDetections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros((0, mask_size, mask_size)))


@runtime_checkable
class Detector(Protocol):
    """What prediction needs from a model: detections for a batch of BGR uint8 tiles."""

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[TileDetections]: ...


@runtime_checkable
class TrainableDetector(Detector, Protocol):
    """What training needs on top: losses for a batch with targets (see ``dataset.Target``)."""

    def losses(self, images: Sequence[np.ndarray], targets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]: ...
