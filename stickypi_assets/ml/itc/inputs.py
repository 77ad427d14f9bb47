"""What the ITC network sees of a tuboid: which tiles (shots), their pixels and the insect's size (reference 5.2).

Torch-free (NumPy + OpenCV), shared by training, validation and prediction so the three can never disagree.

* **Shots.** Training: tile 0 (the first frame, always) plus ``n_shots - 1`` tiles drawn uniformly with
  replacement from ``1 .. n_tiles - 1`` (the reference's sampling, a good augmentation). Inference:
  ``n_shots`` **evenly spaced** tiles from the first to the last (:func:`inference_shot_indices`). The
  original drew random tiles at prediction time too, unseeded, so the same tuboid could get a different
  label on every run (defect 21); evenly spaced tiles are deterministic and cover the whole 24 h window.
* **Colour order and normalisation.** Tiles are BGR on disk; they are converted to **RGB** before the
  ImageNet mean/std (which are RGB statistics) are applied. The original normalised BGR pixels with the RGB
  statistics (defect 22), which mismatches pretrained weights' channels.
* **Size.** The tile scale is ``224 / insect length (px)``; the network gets
  ``log2(length_px / 64)`` (:func:`size_feature`): about -2 .. +2.5 for real insects (15-350 px), i.e. on
  the scale of the normalised features. The original appended the raw ``scale`` (up to ~15 for small
  insects, inversely related to size), un-normalised (defect 22).
* **Augmentation** (training only): brightness, contrast and saturation factors from U[1 - a, 1 + a]
  (applied in RGB, so saturation really is saturation, cf. UID defect 12), horizontal and vertical flips
  (p 0.5 each), a rotation by a uniform angle on an expanded canvas (nothing is cut off; the tile's black
  background fills the corners), then a resize back to ``input_size``. Tiles are resized to ``input_size``
  *before* augmenting, which is what makes small inputs cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from stickypi_assets.formats.tuboids import TILE_SIZE

#: ImageNet statistics of **RGB** pixels in [0, 1] (torchvision's pretrained backbones expect them).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
#: Insect length (px) that maps to a size feature of 0.
SIZE_REFERENCE_PX = 64.0


def inference_shot_indices(n_tiles: int, n_shots: int) -> np.ndarray:
    """``n_shots`` tile indices evenly spaced from 0 to ``n_tiles - 1`` (both included; repeats when
    ``n_tiles < n_shots``). Deterministic: the same tuboid always gets the same shots."""
    if n_tiles < 1 or n_shots < 1:
        raise ValueError(f"need n_tiles >= 1 and n_shots >= 1, got {n_tiles} and {n_shots}")
    return np.rint(np.linspace(0, n_tiles - 1, n_shots)).astype(np.int64)


def training_shot_indices(n_tiles: int, n_shots: int, rng: np.random.Generator) -> np.ndarray:
    """Tile 0, then ``n_shots - 1`` indices uniform with replacement in ``1 .. n_tiles - 1`` (reference 5.2)."""
    if n_tiles < 1 or n_shots < 1:
        raise ValueError(f"need n_tiles >= 1 and n_shots >= 1, got {n_tiles} and {n_shots}")
    if n_tiles == 1:
        return np.zeros(n_shots, dtype=np.int64)
    return np.concatenate([[0], rng.integers(1, n_tiles, size=n_shots - 1)]).astype(np.int64)


def size_feature(scale: float | np.ndarray) -> np.ndarray:
    """``log2(length_px / 64)`` with ``length_px = 224 / scale`` (the ``metadata.txt`` scale)."""
    scale = np.asarray(scale, dtype=np.float64)
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError("tile scales must be finite and > 0")
    return np.log2(TILE_SIZE / scale / SIZE_REFERENCE_PX).astype(np.float32)


def prepare_tiles(tiles: Sequence[np.ndarray], input_size: int) -> np.ndarray:
    """BGR uint8 tiles → one ``(n, input_size, input_size, 3)`` **RGB** uint8 array (area-resampled)."""
    out = np.empty((len(tiles), input_size, input_size, 3), dtype=np.uint8)
    for k, tile in enumerate(tiles):
        if tile.ndim != 3 or tile.shape[2] != 3:
            raise ValueError(f"tile {k}: expected an HxWx3 BGR image, got shape {tile.shape}")
        if tile.shape[:2] != (input_size, input_size):
            tile = cv2.resize(tile, (input_size, input_size), interpolation=cv2.INTER_AREA)
        out[k] = cv2.cvtColor(tile, cv2.COLOR_BGR2RGB)
    return out


def normalise(shots: np.ndarray) -> np.ndarray:
    """``(S, H, W, 3)`` RGB uint8 → ``(S, 3, H, W)`` float32 normalised with the ImageNet mean/std."""
    x = shots.astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def augment_tile(
    tile: np.ndarray,
    rng: np.random.Generator,
    *,
    brightness: float = 0.5, contrast: float = 0.5, saturation: float = 0.5,  # colour jitter (0 = off)
    flip: bool = True, rotate: bool = True,
) -> np.ndarray:  # fmt: skip
    """One randomly augmented copy of an RGB uint8 tile, same shape (see the module docstring)."""
    size = tile.shape[0]
    x = tile.astype(np.float32)
    if brightness:
        x *= rng.uniform(1 - brightness, 1 + brightness)
    if contrast:
        mean = float(_grey(x).mean())
        x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    if saturation:
        grey = _grey(x)[..., None]
        x = (x - grey) * rng.uniform(1 - saturation, 1 + saturation) + grey
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if flip:
        if rng.random() < 0.5:
            out = out[:, ::-1]
        if rng.random() < 0.5:
            out = out[::-1]
    if rotate:
        angle = rng.uniform(0.0, 360.0)
        rad = math.radians(angle)
        side = int(math.ceil(size * (abs(math.cos(rad)) + abs(math.sin(rad)))))
        matrix = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), angle, 1.0)
        matrix[:, 2] += (side - size) / 2.0
        out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (side, side), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))  # fmt: skip
        if side != size:
            out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out)
