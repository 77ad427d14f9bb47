"""Inputs of the Siamese Insect Matcher for pairs of instances (reference 4.3), built in batches.

For an instance ``a0`` of an earlier frame and ``a1`` of a later frame the network sees three grey crops
and four scalars:

* ``x0`` = ``a0`` cut out of its own frame, ``x1`` = ``a1`` out of its frame, ``x1_a0`` = the *later* frame
  cut with ``a0``'s polygon ("is the insect still there?"); each crop is the bbox (clipped to the image),
  pixels outside the polygon black, resized so the longer side is ``crop_size`` and centred on a black
  square (:func:`stickypi_assets.formats.tuboids.masked_square_tile`, the rule of the ITC tiles);
* ``log_d = log10(|c1 - c0| + 1)`` (centroid distance, px), ``t = log10(dt + 1)`` (seconds),
  ``ar = |log10 area1 - log10 area0|`` and ``area_0 = log10 area0``.

Why the code looks the way it does:

* **Crops depend on one instance, not on the pair.** ``x0`` depends on ``a0`` only, ``x1`` on ``a1`` only,
  ``x1_a0`` on ``(a0, later frame)`` only. A :class:`PairBatch` therefore carries *crop specs* (a hashable
  key plus how to cut the crop) rather than pixels, a :class:`CropStore` cuts each crop once and keeps it in
  an LRU, and the matcher can cache one embedding per key (the original cached ``f(x0)`` per annotation and
  ``f(x1_a0)`` per annotation and next frame for the same reason). Scoring ``P`` pairs between frames with
  ``N`` instances then costs ``O(N)`` crops and embeddings plus ``O(P)`` cheap head evaluations.
* **Frames are decoded once and converted to grey once**, before cropping. The reference crops BGR, resizes,
  then converts to grey; grey conversion, masking and bilinear resizing are all linear, so the order only
  changes rounding (at most one grey level), while cropping a grey frame needs a third of the memory.
* **Areas are clamped to >= 1 px** before the logarithms: a degenerate polygon (zero area) would otherwise
  give ``-inf`` inputs. Readers drop such rings, so this only protects hand-built instances.
* Scalars are computed with NumPy over whole index arrays; the per-frame centroids and areas are computed
  once per :class:`Frame`.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.names import format_datetime, parse_stem
from stickypi_assets.formats.tuboids import masked_square_tile
from stickypi_assets.formats.uid_svg import UidSvg

ImageSource = np.ndarray | Callable[[], np.ndarray] | None
CropKey = Hashable


@dataclass(eq=False)
class Frame:
    """One annotated image of a series: its unique ``key``, capture time, instances and pixels.

    ``key`` identifies the *image* (use its stem ``<device>.<datetime>``): crops and embeddings are cached
    under it, so two different images must never share a key. ``image`` is a BGR or grey array, a
    zero-argument callable returning one (decoded only when a crop is needed, e.g. ``UidSvg.decode_image``),
    or ``None`` for frames whose crops are all supplied beforehand (tails carried over from a previous day).
    """

    key: str
    datetime: datetime
    instances: list[Instance]
    image: ImageSource = field(default=None, repr=False)

    @classmethod
    def from_uid_svg(cls, doc: UidSvg, stem: str | None = None, when: datetime | None = None) -> Frame:
        """A frame from a UID SVG; ``stem`` (``<device>.<datetime>``) gives the key and, if absent, the time."""
        if stem is None and when is None:
            raise ValueError("give the image stem '<device>.<datetime>' or its datetime")
        if when is None:
            when = parse_stem(stem, check_epoch=False).datetime
        if stem is None:
            stem = format_datetime(when)
        return cls(key=stem, datetime=when, instances=list(doc.instances), image=doc.decode_image)

    def load_image(self) -> np.ndarray:
        if self.image is None:
            raise ValueError(f"frame {self.key!r} has no image (its crops must be supplied to the CropStore)")
        return self.image() if callable(self.image) else self.image

    @cached_property
    def centroids(self) -> np.ndarray:
        """``(N, 2)`` float64 centroids (x, y) of the instances."""
        if not self.instances:
            return np.zeros((0, 2), dtype=np.float64)
        return np.array([inst.centroid for inst in self.instances], dtype=np.float64)

    @cached_property
    def fingerprints(self) -> tuple[str, ...]:
        """A short content hash of each instance's polygon (part of its crop keys)."""
        return tuple(
            hashlib.blake2b(np.ascontiguousarray(inst.polygon, dtype=np.float64).tobytes(), digest_size=8).hexdigest()
            for inst in self.instances
        )

    @cached_property
    def areas(self) -> np.ndarray:
        """``(N,)`` float64 polygon areas, clamped to >= 1 px (see the module docstring)."""
        return np.maximum(np.array([inst.area for inst in self.instances], dtype=np.float64), 1.0)


class CropSpec(NamedTuple):
    """How to make one crop: cut ``frame``'s pixels with ``polygon``; ``key`` names the result."""

    key: CropKey
    frame: Frame
    polygon: np.ndarray


def self_crop_key(frame: Frame, index: int) -> tuple:
    """Key of an instance cut out of its own frame (``x0``/``x1``).

    The polygon's fingerprint is part of the key: a matcher that outlives one tracking call (a resource
    cached per process) must not reuse the embedding of instance ``index`` after the image was segmented
    again and ``index`` names another insect.
    """
    return ("self", frame.key, int(index), frame.fingerprints[index])


def delayed_crop_key(later: Frame, frame0: Frame, index0: int) -> tuple:
    """Key of the later frame cut with an earlier instance's polygon (``x1_a0``)."""
    return ("at", later.key, frame0.key, int(index0), frame0.fingerprints[index0])


def grey(image: np.ndarray) -> np.ndarray:
    """A 2-D uint8 grey image from BGR, BGRA or grey input."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a BGR or grey image, got shape {image.shape}")


def cut_crop(grey_image: np.ndarray, polygon: np.ndarray, size: int) -> np.ndarray:
    """The masked square grey crop (uint8 ``size x size``); all black if the polygon lies outside the image."""
    try:
        tile, _ = masked_square_tile(grey_image, polygon, size=size)
    except ValueError:
        return np.zeros((size, size), dtype=np.uint8)
    return tile


class CropStore:
    """Cuts crops on demand and keeps them: each frame decoded (and made grey) once, each crop cut once.

    Crops are uint8 (11 kB at 105 px) in an LRU of ``max_crops``; decoded grey frames in an LRU of
    ``max_images`` (a 2592 x 1944 grey frame is 5 MB). Consecutive-frame tracking touches two frames at a
    time, so the defaults decode every frame exactly once there. ``pin`` stores crops that cannot be
    recomputed (their frame has no image, e.g. tails carried over from the previous day); pinned crops are
    never evicted. ``n_decoded`` and ``n_cut`` count the work done (tests and benchmarks read them).
    """

    def __init__(self, crop_size: int = 105, max_crops: int = 32768, max_images: int = 4) -> None:
        self.crop_size = crop_size
        self.max_crops = max_crops
        self.max_images = max_images
        self._crops: OrderedDict[CropKey, np.ndarray] = OrderedDict()
        self._pinned: dict[CropKey, np.ndarray] = {}
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self.n_decoded = 0
        self.n_cut = 0

    def pin(self, key: CropKey, crop: np.ndarray) -> None:
        crop = np.asarray(crop, dtype=np.uint8)
        if crop.shape != (self.crop_size, self.crop_size):
            raise ValueError(f"pinned crop must be {self.crop_size}x{self.crop_size}, got {crop.shape}")
        self._pinned[key] = crop

    def __contains__(self, key: CropKey) -> bool:
        return key in self._pinned or key in self._crops

    def grey_frame(self, frame: Frame) -> np.ndarray:
        img = self._images.get(frame.key)
        if img is not None:
            self._images.move_to_end(frame.key)
            return img
        img = np.ascontiguousarray(grey(frame.load_image()))
        self.n_decoded += 1
        self._images[frame.key] = img
        while len(self._images) > self.max_images:
            self._images.popitem(last=False)
        return img

    def get_many(self, specs: Sequence[CropSpec]) -> np.ndarray:
        """``(len(specs), S, S)`` uint8 crops; missing ones are cut frame by frame (one decode per frame)."""
        size = self.crop_size
        out = np.empty((len(specs), size, size), dtype=np.uint8)
        missing: dict[str, list[int]] = {}
        frames: dict[str, Frame] = {}
        for k, spec in enumerate(specs):
            crop = self._pinned.get(spec.key)
            if crop is None:
                crop = self._crops.get(spec.key)
                if crop is not None:
                    self._crops.move_to_end(spec.key)
            if crop is None:
                missing.setdefault(spec.frame.key, []).append(k)
                frames[spec.frame.key] = spec.frame
            else:
                out[k] = crop
        for frame_key, positions in missing.items():
            img = self.grey_frame(frames[frame_key])
            done: dict[CropKey, np.ndarray] = {}
            for k in positions:
                spec = specs[k]
                crop = done.get(spec.key)
                if crop is None:
                    crop = cut_crop(img, spec.polygon, size)
                    self.n_cut += 1
                    done[spec.key] = crop
                    self._crops[spec.key] = crop
                out[k] = crop
        while len(self._crops) > self.max_crops:
            self._crops.popitem(last=False)
        return out

    def clear(self) -> None:
        self._crops.clear()
        self._images.clear()


@dataclass
class PairBatch:
    """A batch of candidate pairs ``(a0 earlier, a1 later)``: raw geometry, crops (as specs or pixels).

    ``distance`` (px) and ``delta_t`` (s) are the raw values behind ``log_d`` and ``t``; training
    augmentation replaces them by exponential draws. Either ``specs`` (three lists of :class:`CropSpec`
    for ``x0``, ``x1``, ``x1_a0``, resolved through ``store``) or ``pixels`` (three float32 ``(B, S, S)``
    arrays in [0, 1], e.g. augmented training crops) describe the images. ``instances0``/``instances1`` let
    geometric matchers (test doubles, IoU baselines) score pairs without touching pixels.
    """

    distance: np.ndarray
    delta_t: np.ndarray
    area0: np.ndarray
    area1: np.ndarray
    instances0: list[Instance] = field(default_factory=list, repr=False)
    instances1: list[Instance] = field(default_factory=list, repr=False)
    specs: tuple[list[CropSpec], list[CropSpec], list[CropSpec]] | None = field(default=None, repr=False)
    store: CropStore | None = field(default=None, repr=False)
    pixels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.distance)

    @property
    def log_d(self) -> np.ndarray:
        return np.log10(np.maximum(self.distance, 0.0) + 1.0)

    @property
    def t(self) -> np.ndarray:
        return np.log10(np.maximum(self.delta_t, 0.0) + 1.0)

    @property
    def ar(self) -> np.ndarray:
        return np.abs(np.log10(self.area1) - np.log10(self.area0))

    @property
    def area_0(self) -> np.ndarray:
        return np.log10(self.area0)

    def scalars(self) -> np.ndarray:
        """``(B, 4)`` float32 ``[ar, log_d, area_0, t]``: the fusion inputs after ``S`` and ``Q``, in order."""
        if len(self) == 0:
            return np.zeros((0, 4), dtype=np.float32)
        return np.stack([self.ar, self.log_d, self.area_0, self.t], axis=1).astype(np.float32)

    def crop_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x0, x1, x1_a0`` as float32 ``(B, S, S)`` in [0, 1] (cuts crops through the store if needed)."""
        if self.pixels is not None:
            return self.pixels
        if self.specs is None or self.store is None:
            raise ValueError("this batch carries no images (neither pixels nor crop specs with a store)")
        return tuple(self.store.get_many(s).astype(np.float32) / 255.0 for s in self.specs)  # type: ignore[return-value]

    @classmethod
    def concat(cls, batches: Sequence[PairBatch]) -> PairBatch:
        """One batch from several (e.g. stitching candidates spread over many frame pairs)."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return empty_batch()
        stores = {id(b.store) for b in batches}
        if any(b.specs is None for b in batches) or len(stores) != 1:
            raise ValueError("only batches of crop specs sharing one CropStore can be concatenated")
        specs = tuple([s for b in batches for s in b.specs[k]] for k in range(3))  # type: ignore[index]
        return cls(
            distance=np.concatenate([b.distance for b in batches]),
            delta_t=np.concatenate([b.delta_t for b in batches]),
            area0=np.concatenate([b.area0 for b in batches]),
            area1=np.concatenate([b.area1 for b in batches]),
            instances0=[i for b in batches for i in b.instances0],
            instances1=[i for b in batches for i in b.instances1],
            specs=specs,  # type: ignore[arg-type]
            store=batches[0].store,
        )


def empty_batch() -> PairBatch:
    z = np.zeros(0, dtype=np.float64)
    return PairBatch(distance=z, delta_t=z, area0=z, area1=z, specs=([], [], []))


def frame_pair_batch(
    frame0: Frame, idx0: Sequence[int] | np.ndarray, frame1: Frame, idx1: Sequence[int] | np.ndarray, store: CropStore
) -> PairBatch:
    """Pairs ``(frame0.instances[idx0[k]], frame1.instances[idx1[k]])`` for every k, as one batch.

    ``frame1`` should be the later frame; ``delta_t`` is ``t1 - t0`` in seconds (the same for every pair).
    """
    idx0 = np.asarray(idx0, dtype=np.int64).reshape(-1)
    idx1 = np.asarray(idx1, dtype=np.int64).reshape(-1)
    if idx0.shape != idx1.shape:
        raise ValueError("idx0 and idx1 must have the same length")
    if len(idx0) == 0:
        return empty_batch()
    c0, c1 = frame0.centroids[idx0], frame1.centroids[idx1]
    distance = np.hypot(c1[:, 0] - c0[:, 0], c1[:, 1] - c0[:, 1])
    dt = (frame1.datetime - frame0.datetime).total_seconds()
    inst0, inst1 = frame0.instances, frame1.instances
    specs = (
        [CropSpec(self_crop_key(frame0, i), frame0, inst0[i].polygon) for i in idx0],
        [CropSpec(self_crop_key(frame1, j), frame1, inst1[j].polygon) for j in idx1],
        [CropSpec(delayed_crop_key(frame1, frame0, i), frame1, inst0[i].polygon) for i in idx0],
    )
    return PairBatch(
        distance=distance,
        delta_t=np.full(len(idx0), dt, dtype=np.float64),
        area0=frame0.areas[idx0],
        area1=frame1.areas[idx1],
        instances0=[inst0[i] for i in idx0],
        instances1=[inst1[j] for j in idx1],
        specs=specs,  # type: ignore[arg-type]
        store=store,
    )


def pair_scalars(a0: Instance, a1: Instance, delta_t_s: float) -> dict[str, float]:
    """The four scalar inputs of one pair, written out plainly (documentation and tests)."""
    (x0, y0), (x1, y1) = a0.centroid, a1.centroid
    area0, area1 = max(a0.area, 1.0), max(a1.area, 1.0)
    return {
        "log_d": math.log10(math.hypot(x1 - x0, y1 - y0) + 1.0),
        "t": math.log10(max(delta_t_s, 0.0) + 1.0),
        "ar": abs(math.log10(area1) - math.log10(area0)),
        "area_0": math.log10(area0),
    }


@runtime_checkable
class Matcher(Protocol):
    """Anything that scores candidate pairs: ``score_pairs(batch)`` → float array in [0, 1], one per pair.

    Defined here rather than next to the network so the tracker does not need torch: geometric matchers
    (test doubles, IoU baselines) read ``batch.instances0/1`` and the raw scalars; the Siamese matcher
    (:class:`stickypi_assets.ml.sim.model.SiameseMatcher`) reads the crops.
    """

    def score_pairs(self, batch: PairBatch) -> np.ndarray: ...
