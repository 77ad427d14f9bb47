"""Synthetic cards, bundles and a model-free detector shared by the UID tests.

``BlobDetector`` "detects" dark blobs on a light card by thresholding, so prediction, tiling, edge
filtering, merging and validation can be tested end to end without training a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.split import md5_bytes, split_for_md5
from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg
from stickypi_assets.ml.uid.config import UidConfig, save_config
from stickypi_assets.ml.uid.detector import TileDetections, register_detector

CARD_BGR = (40, 220, 230)  # yellow sticky card
INSECT_BGR = (30, 40, 60)


def rectangle(x: int, y: int, w: int, h: int) -> np.ndarray:
    """Polygon of the pixel block ``[x, x + w) x [y, y + h)`` as ``cv2.fillPoly`` rasterises it."""
    return np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]], dtype=np.int32)


def synthetic_card(
    width: int,
    height: int,
    polygons: Sequence[np.ndarray],
    *,
    colour: tuple[int, int, int] = INSECT_BGR,
    noise: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """A flat card with every polygon painted in ``colour`` (dark by default; BGR uint8)."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = CARD_BGR
    cv2.fillPoly(image, [np.asarray(p, dtype=np.int32) for p in polygons], colour)
    if noise:
        rng = np.random.default_rng(seed)
        image = np.clip(image.astype(np.int16) + rng.integers(-noise, noise + 1, image.shape), 0, 255).astype(np.uint8)
    return image


def encode_for_split(image: np.ndarray, split: str) -> bytes:
    """JPEG bytes of ``image`` whose md5 falls in ``split`` (the quality is varied until it does)."""
    for quality in range(100, 50, -1):
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        if split_for_md5(md5_bytes(data)) == split:
            return data
    raise AssertionError(f"no JPEG quality put the image in the {split} split")


def write_annotated_svg(path: Path, image: np.ndarray, polygons: Sequence[np.ndarray], split: str) -> UidSvg:
    data = encode_for_split(image, split)
    doc = UidSvg(
        jpeg_bytes=data,
        width=image.shape[1],
        height=image.shape[0],
        metadata={},
        instances=[Instance(polygon=p, fill="#0000ff") for p in polygons],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_uid_svg(doc, path)
    return doc


def make_bundle(root: Path, config: UidConfig, files: dict[str, tuple[np.ndarray, list[np.ndarray], str]]) -> Path:
    """``root/config/config.yaml`` + ``root/data/<name>.svg`` for each ``name: (image, polygons, split)``."""
    save_config(config, root / "config" / "config.yaml")
    for name, (image, polygons, split) in files.items():
        write_annotated_svg(root / "data" / f"{name}.svg", image, polygons, split)
    return root


class BlobDetector:
    """Dark connected components of a tile as detections with full-tile masks.

    ``score`` may be a callable of the component's area, to give detections different scores.
    """

    def __init__(self, score: float = 0.99, threshold: int = 100) -> None:
        self.score = score
        self.threshold = threshold
        self.calls: list[int] = []

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[TileDetections]:
        self.calls.append(len(images))
        out = []
        for image in images:
            dark = (cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY) < self.threshold).astype(np.uint8)
            # the zero padding is dark too: only count components that are not pure black
            dark &= (image.max(axis=2) > 0).astype(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
            boxes, masks = [], []
            for k in range(1, n):
                x, y, w, h, _area = stats[k]
                boxes.append([x, y, x + w, y + h])
                masks.append((labels == k).astype(np.float32))
            h, w = image.shape[:2]
            out.append(
                TileDetections(
                    boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                    scores=np.full(len(boxes), self.score),
                    labels=np.zeros(len(boxes)),
                    masks=np.array(masks, dtype=np.float32).reshape(-1, h, w),
                    masks_in_boxes=False,
                )
            )
        return out


class PluggedBlobDetector(BlobDetector):
    """A :class:`BlobDetector` that a bundle names in its config (``DETECTOR``): what a third-party model provides."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device
        self.weights: bytes | None = None

    def load_weights(self, path) -> None:
        self.weights = Path(path).read_bytes()


def plugged_blob_detector(config, device: str) -> PluggedBlobDetector:
    """``DETECTOR: plugged-blob``: registered below, the way a deployment allows its own detectors."""
    return PluggedBlobDetector(device)


#: The name bundles use for :func:`plugged_blob_detector` (a config selects it; it never names the module).
PLUGGED_BLOB = "plugged-blob"
register_detector(PLUGGED_BLOB, plugged_blob_detector)
