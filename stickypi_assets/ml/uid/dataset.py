"""UID training data: annotated SVGs of a bundle → split → augmented native-scale crops with targets.

Reference 3.2, with its defects fixed:

* Each ``<bundle>/data/*.svg`` is one annotated image; the md5 of its **embedded JPEG** decides the split
  (reference 2.8), so our splits are the original's. Nothing is cached on disk: parsing a 2592 x 1944 SVG
  takes ~50 ms, and the original's cache keyed by file name went stale after edits (defect 8).
* An SVG that cannot be read (hostile, truncated, not an annotation, embedded image undecodable) is
  skipped with its reason, logged and returned by :func:`read_annotated_images` so training reports it
  (``TrainResult.skipped``, ``metrics.jsonl``) and goes on with the rest, as the SIM and ITC data sets do;
  only a bundle where no file is usable is an error. One bad upload must not cost a training run.
* Objects whose rotated-rectangle long side is ``<= MIN_MAX_OBJ_SIZE[0]`` or ``> [1]`` (and strokes outside
  the palette) are left out of the targets, as in the original.
* Training samples are random square crops at **native scale** (never resized, reference defect 5). Zero
  padding by ``ORIGINAL_IMAGE_PADDING``, rotation by any angle, the crop and both flips are composed into
  **one affine map** applied once with ``cv2.warpAffine`` to produce only the crop (rotating a whole
  2592 x 1944 image per sample would cost more than the crop itself), and the same map is applied to the
  polygon vertices, which are then rasterised into the crop (``cv2.fillPoly`` clips them to it). Outside
  the image everything is zero, exactly like padding.
* Colour jitter uses torchvision ColorJitter semantics in the right channel order: grey levels with BGR
  weights and hue shifted in OpenCV's BGR→HSV space. The original jittered BGR arrays as if RGB, which
  swapped the roles of the red and blue channels in saturation and hue (defect 12).
* Validation crops are a fixed grid over the image centred in zero padding up to the next multiple of the
  crop size; an axis that is already a multiple gets no padding (the original added a whole empty row or
  column of crops then, defect 9).

Targets are ``{"boxes": (K, 4) float32 x1 y1 x2 y2, "labels": (K,) int64 0-based, "masks": (K, S, S)
uint8}``, with boxes derived from the rasterised masks so both always agree.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.split import Split, split_for_md5
from stickypi_assets.formats.uid_svg import UidSvg, read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig

log = logging.getLogger(__name__)

Target = dict[str, np.ndarray]
_SHIFT = 4  # fractional bits for cv2.fillPoly: sub-pixel vertex positions after rotation


@dataclass
class AnnotatedImage:
    """One annotated SVG reduced to what training needs (JPEG kept compressed; decoded on demand)."""

    name: str
    md5: str
    split: Split
    width: int
    height: int
    jpeg_bytes: bytes = field(repr=False)
    polygons: list[np.ndarray] = field(repr=False)  # float64 (N, 2) x, y in image pixels
    labels: list[int] = field(repr=False)  # 0-based class indices
    n_excluded: int = 0

    def decode(self) -> np.ndarray:
        image = cv2.imdecode(
            np.frombuffer(self.jpeg_bytes, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        )
        if image is None:  # a FormatError (a ValueError): the file's fault, recorded like any unreadable SVG
            raise FormatError(f"{self.name}: embedded image cannot be decoded")
        return image


def object_size(polygon: np.ndarray) -> float:
    """Long side of the minimum-area rotated rectangle (the original's ``width`` for the size filter)."""
    return float(max(cv2.minAreaRect(np.asarray(polygon, dtype=np.float32))[1]))


def annotated_image(doc: UidSvg, name: str, config: UidConfig) -> AnnotatedImage:
    """Keep the instances of a document that are in the palette and inside the size range."""
    lo, hi = config.min_max_obj_size
    polygons, labels, excluded = [], [], 0
    for inst in doc.instances:
        label = config.label_for_stroke(inst.stroke)
        size = object_size(inst.polygon)
        if label is None or not lo < size <= hi:
            excluded += 1
            continue
        polygons.append(inst.polygon.astype(np.float64))
        labels.append(label)
    return AnnotatedImage(
        name=name,
        md5=doc.md5,
        split=split_for_md5(doc.md5),
        width=doc.width,
        height=doc.height,
        jpeg_bytes=doc.jpeg_bytes,
        polygons=polygons,
        labels=labels,
        n_excluded=excluded,
    )


def read_annotated_images(
    bundle_dir: str | Path, config: UidConfig
) -> tuple[list[AnnotatedImage], list[tuple[str, str]]]:
    """Every ``<bundle>/data/*.svg`` (non-recursive, sorted), read and filtered, and ``(file, reason)`` for
    each file skipped because it could not be used (see the module docstring).

    The embedded image is decoded once here, so an undecodable one is skipped now rather than failing the
    training loop hours later. Raises ``ValueError`` naming every reason when SVGs exist but none is usable.
    """
    data_dir = Path(bundle_dir) / "data"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} does not exist: a UID bundle holds its annotations in data/*.svg")
    files = sorted(data_dir.glob("*.svg"))
    images: list[AnnotatedImage] = []
    skipped: list[tuple[str, str]] = []
    for path in files:
        try:
            doc = read_uid_svg(path)
            record = annotated_image(doc, path.name, config)
            record.decode()
        except (FormatError, OSError) as exc:  # read_uid_svg turns any other failure into a FormatError
            skipped.append((path.name, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one unusable file is skipped, whatever went wrong
            skipped.append((path.name, f"{type(exc).__name__}: {exc}"))
        else:
            for warning in doc.warnings:
                log.warning("%s", warning)
            images.append(record)
            continue
        log.warning("UID data: skipped %s: %s", *skipped[-1])
    if files and not images:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped)
        raise ValueError(f"no usable annotation SVG in {data_dir}: all {len(files)} skipped ({reasons})")
    return images, skipped


def load_annotated_images(bundle_dir: str | Path, config: UidConfig) -> list[AnnotatedImage]:
    """The usable images of :func:`read_annotated_images` (skipped files are only logged)."""
    return read_annotated_images(bundle_dir, config)[0]


def split_images(images: Sequence[AnnotatedImage]) -> tuple[list[AnnotatedImage], list[AnnotatedImage]]:
    """``(train, validation)`` by the md5 rule."""
    return [im for im in images if im.split == "train"], [im for im in images if im.split == "validation"]


# -- geometry ---------------------------------------------------------------------------------------------


def crop_transform(
    centre: tuple[float, float], crop_size: int, angle_deg: float = 0.0, flip_x: bool = False, flip_y: bool = False
) -> np.ndarray:
    """2x3 affine map from image pixel coordinates to crop pixel coordinates.

    The crop of ``crop_size`` px is centred on ``centre`` (image pixels), rotated by ``angle_deg``
    (counter-clockwise on screen, like ``cv2.getRotationMatrix2D``) and optionally mirrored. Pixel centres
    sit at integer coordinates, as in ``cv2.warpAffine`` and ``cv2.fillPoly``.
    """
    half = (crop_size - 1) / 2.0
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    rot = np.array([[cos, sin], [-sin, cos]])  # y axis points down: this turns content counter-clockwise
    flip = np.diag([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0])
    linear = flip @ rot
    offset = np.array([half, half]) - linear @ np.asarray(centre, dtype=np.float64)
    return np.hstack([linear, offset[:, None]])


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def rasterise_targets(
    polygons: Sequence[np.ndarray],
    labels: Sequence[int],
    matrix: np.ndarray,
    crop_size: int,
    min_visible_pixels: int,
) -> Target:
    """Transform polygons into the crop, rasterise them and derive boxes; drop (nearly) invisible ones."""
    masks, boxes, kept = [], [], []
    for polygon, label in zip(polygons, labels, strict=True):
        pts = apply_affine(polygon, matrix)
        if (pts.max(axis=0) < 0).any() or (pts.min(axis=0) > crop_size - 1).any():
            continue  # entirely outside the crop
        mask = np.zeros((crop_size, crop_size), dtype=np.uint8)
        cv2.fillPoly(mask, [np.rint(pts * (1 << _SHIFT)).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        ys, xs = np.nonzero(mask)
        if len(xs) < max(min_visible_pixels, 1):
            continue
        masks.append(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        kept.append(label)
    return {
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "labels": np.asarray(kept, dtype=np.int64),
        "masks": np.stack(masks) if masks else np.zeros((0, crop_size, crop_size), dtype=np.uint8),
    }


# -- augmentation ----------------------------------------------------------------------------------------


def _grey(image: np.ndarray) -> np.ndarray:
    """Luma of a float BGR image with BGR weights (0.114 B + 0.587 G + 0.299 R), as float32."""
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.float32), cv2.COLOR_BGR2GRAY)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) * factor


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean grey level (torchvision semantics) of a BGR image."""
    image = np.asarray(image, dtype=np.float32)
    return image * factor + float(_grey(image).mean()) * (1.0 - factor)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the per-pixel grey level of a BGR image (0 = greyscale)."""
    image = np.asarray(image, dtype=np.float32)
    return image * factor + _grey(image)[:, :, None] * (1.0 - factor)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue of a BGR image by ``shift`` of a full turn (0.5 = opposite colour)."""
    hsv = cv2.cvtColor(np.clip(np.rint(image), 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int16) + int(round(shift * 256))) % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(np.float32)


def colour_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    hue: float = 0.1,
) -> np.ndarray:
    """torchvision ``ColorJitter`` on a **BGR** uint8 image, in random order, channel order respected.

    Factors are uniform in ``[1 - a, 1 + a]`` (hue: shift uniform in ``[-hue, hue]`` of a full turn).
    """
    out = image.astype(np.float32)
    for op in rng.permutation(4):
        if op == 0 and brightness > 0:
            out = adjust_brightness(out, rng.uniform(1 - brightness, 1 + brightness))
        elif op == 1 and contrast > 0:
            out = adjust_contrast(out, rng.uniform(1 - contrast, 1 + contrast))
        elif op == 2 and saturation > 0:
            out = adjust_saturation(out, rng.uniform(1 - saturation, 1 + saturation))
        elif op == 3 and hue > 0:
            out = adjust_hue(out, rng.uniform(-hue, hue))
        out = np.clip(out, 0, 255)  # torchvision clamps after every operation
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class Sample:
    """One crop and its targets (``image`` BGR uint8 ``(S, S, 3)``)."""

    image: np.ndarray
    target: Target
    source: str
    matrix: np.ndarray  # image → crop affine map (2 x 3)


def random_crop(
    image: np.ndarray,
    record: AnnotatedImage,
    config: UidConfig,
    rng: np.random.Generator,
    *,
    crop_size: int | None = None,
    jitter: bool = True,
) -> Sample:
    """One augmented training crop of ``image`` (the decoded ``record``), see the module docstring."""
    size = crop_size or config.crop_size
    pad = config.original_image_padding
    height, width = image.shape[:2]
    centre = []
    for extent in (width, height):
        lo, hi = (size - 1) / 2 - pad, extent - 1 + pad - (size - 1) / 2
        centre.append(rng.uniform(lo, hi) if hi > lo else (extent - 1) / 2)
    angle = rng.uniform(0.0, 360.0) if config.rotate else 0.0
    flip_x = bool(config.flip and rng.random() < 0.5)
    flip_y = bool(config.flip and rng.random() < 0.5)
    matrix = crop_transform((centre[0], centre[1]), size, angle, flip_x, flip_y)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
    if jitter:
        crop = colour_jitter(crop, rng, config.brightness, config.contrast, config.saturation, config.hue)
    target = rasterise_targets(record.polygons, record.labels, matrix, size, config.min_visible_pixels)
    return Sample(image=crop, target=target, source=record.name, matrix=matrix)


def grid_offsets(size: int, crop: int) -> tuple[int, list[int]]:
    """``(padding before, crop offsets in the padded axis)`` of the centred validation grid.

    The axis is padded to ``ceil(size / crop) * crop`` (no padding when already a multiple); odd padding
    puts the extra pixel before, as the original did.
    """
    n = max(1, math.ceil(size / crop))
    total = n * crop - size
    return (total + 1) // 2, [k * crop for k in range(n)]


def validation_crops(
    image: np.ndarray, record: AnnotatedImage, config: UidConfig, *, crop_size: int | None = None
) -> list[Sample]:
    """The fixed grid of crops of a validation image (2592 x 1944 at 1024 px: 3 x 2 crops)."""
    size = crop_size or config.crop_size
    height, width = image.shape[:2]
    pad_x, xs = grid_offsets(width, size)
    pad_y, ys = grid_offsets(height, size)
    samples = []
    for y in ys:
        for x in xs:
            matrix = np.array([[1.0, 0.0, pad_x - x], [0.0, 1.0, pad_y - y]])
            crop = cv2.warpAffine(
                image, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
            target = rasterise_targets(record.polygons, record.labels, matrix, size, config.min_visible_pixels)
            samples.append(Sample(image=crop, target=target, source=record.name, matrix=matrix))
    return samples


# -- torch streams ----------------------------------------------------------------------------------------


class _DecodedCache:
    """Small LRU of decoded images: a sample costs less than decoding its 5 MP JPEG again."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, index: int, record: AnnotatedImage) -> np.ndarray:
        if index in self._items:
            self._items.move_to_end(index)
            return self._items[index]
        image = record.decode()
        self._items[index] = image
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return image


class RandomCropStream(torch.utils.data.IterableDataset):
    """Endless augmented crops from training images chosen uniformly at random.

    Each DataLoader worker draws from its own generator seeded by ``(seed, worker id)``, so runs are
    reproducible for a given seed and worker count and workers never repeat each other.
    """

    def __init__(
        self, images: Sequence[AnnotatedImage], config: UidConfig, *, seed: int = 0, cache_images: int = 8
    ) -> None:
        if not images:
            raise ValueError("no training images (is every SVG in the validation split?)")
        self.images = list(images)
        self.config = config
        self.seed = seed
        self.cache_images = cache_images

    def __iter__(self) -> Iterator[Sample]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id + 1])
        cache = _DecodedCache(self.cache_images)
        while True:
            index = int(rng.integers(len(self.images)))
            record = self.images[index]
            yield random_crop(cache.get(index, record), record, self.config, rng)


def iter_validation_samples(images: Sequence[AnnotatedImage], config: UidConfig) -> Iterator[Sample]:
    """Validation grid crops of every image, decoding one image at a time (bounded memory)."""
    for record in images:
        yield from validation_crops(record.decode(), record, config)


def collate_samples(batch: list[Sample]) -> list[Sample]:
    """DataLoader ``collate_fn``: detection batches stay lists (crops may hold any number of objects)."""
    return batch
