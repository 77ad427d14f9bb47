"""maskAL's certainty of an instance-segmentation result, from the detections of several MC-dropout passes.

Ported from maskAL (pieterblok/maskal, Apache-2.0; arXiv 2112.06586) onto plain arrays, so it works for any
detector that can be sampled (see :mod:`stickypi_assets.active.uid_mc` for the torchvision Mask R-CNN):

1. The detections of all ``T`` passes are clustered greedily into *observations*: pass by pass, a detection joins
   the first observation whose **first member** overlaps it with IoU > ``iou_threshold`` (mask IoU when both have
   masks, box IoU otherwise), or opens a new one.
2. Per observation (1 = certain):

   * semantic ``u_sem``: the mean over members of ``1 − H(p) / log(K + 1)``, ``p`` the softmax over the background
     and ``K`` classes; with a single class (``K = 1``) maskAL takes the softmax score itself, and so do we;
   * spatial ``u_spl``: (mean mask IoU of the members with their mean mask thresholded at ``mask_threshold``) ×
     (mean box IoU of the members with their mean box); the mask factor is 1 when no member has a mask (the
     box-only pass that ranks a pool cheaply);
   * occurrence ``u_n = min(members / T, 1)``;
   * ``u_h = u_sem · u_spl · u_n``.
3. The image's certainty aggregates ``u_h`` over its observations (``mean``, maskAL's default, or ``min``).

**An image with no detection in any pass** has no observation. maskAL skips such images (it can never ask for a
frame where the model misses everything), Dataiku asks for them first. On sticky cards both are wrong in places:
most empty early-season frames really are empty (asking for them wastes labels), while a frame where small insects
are missed is exactly what the model needs. :func:`image_certainty` returns ``empty_certainty`` for them (default
0.5: ranked after every image whose observations are really doubtful, before the confident ones) and the samplers
say "no detection" as the reason; the detection-count sampler can ask for them explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: maskAL's mask-IoU threshold for joining an observation.
DEFAULT_IOU_THRESHOLD = 0.5
#: maskAL's threshold on the mean of the members' binary masks.
DEFAULT_MASK_THRESHOLD = 0.25
#: Certainty given to an image without any detection (see the module docstring).
DEFAULT_EMPTY_CERTAINTY = 0.5
AGGREGATES = ("mean", "min")


@dataclass(frozen=True)
class LocalMask:
    """A binary mask cut to a window: ``mask[r, c]`` is pixel ``(x0 + c, y0 + r)`` of the image.

    Detections of a 2592×1944 frame are small: keeping each one's window (as
    :func:`~stickypi_assets.ml.uid.postprocess.paste_box_mask` returns it) instead of a full-frame array keeps
    ``T`` passes × hundreds of detections in a few MB.
    """

    mask: np.ndarray
    x0: int
    y0: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))
        if self.mask.ndim != 2:
            raise ValueError(f"a mask is 2-D, got shape {self.mask.shape}")

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def x1(self) -> int:
        return self.x0 + self.mask.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.mask.shape[0]

    def shifted(self, dx: int, dy: int) -> LocalMask:
        return LocalMask(self.mask, self.x0 + dx, self.y0 + dy)


@dataclass(frozen=True)
class PassDetection:
    """One detection of one MC-dropout pass: box ``(x1, y1, x2, y2)``, softmax ``probs`` over background + the
    ``K`` classes (index 0 = background), the class it was detected as (0-based, foreground) and its mask."""

    box: np.ndarray
    probs: np.ndarray
    label: int = 0
    mask: LocalMask | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", np.asarray(self.box, dtype=np.float64).reshape(4))
        object.__setattr__(self, "probs", np.asarray(self.probs, dtype=np.float64).reshape(-1))
        if self.probs.size < 2:
            raise ValueError("probs holds the background and at least one class")

    @property
    def score(self) -> float:
        """The softmax probability of the detected class."""
        return float(self.probs[self.label + 1])


@dataclass(frozen=True)
class Observation:
    """An insect as seen by the passes that found it, with maskAL's certainty terms."""

    members: tuple[PassDetection, ...]
    u_sem: float
    u_spl: float
    u_n: float

    @property
    def u_h(self) -> float:
        return self.u_sem * self.u_spl * self.u_n

    @property
    def box(self) -> np.ndarray:
        return np.mean([m.box for m in self.members], axis=0)

    @property
    def label(self) -> int:
        """The members' majority class (ties: the lowest index)."""
        return int(np.bincount([m.label for m in self.members]).argmax())

    @property
    def score(self) -> float:
        return float(np.mean([m.score for m in self.members]))


@dataclass(frozen=True)
class ImageCertainty:
    """An image's certainty and the observations it comes from (``empty`` when no pass found anything)."""

    certainty: float
    observations: list[Observation] = field(default_factory=list)
    n_passes: int = 0

    @property
    def empty(self) -> bool:
        return not self.observations

    @property
    def uncertainty(self) -> float:
        return 1.0 - self.certainty


# -- overlaps ---------------------------------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes (continuous coordinates, as torchvision's ``box_iou``)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_iou(a: LocalMask, b: LocalMask) -> float:
    """IoU of two windowed binary masks (pixels counted in the image frame)."""
    x0, y0, x1, y1 = max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1)
    inter = 0
    if x1 > x0 and y1 > y0:
        wa = a.mask[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
        wb = b.mask[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
        inter = int(np.logical_and(wa, wb).sum())
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def _overlap(a: PassDetection, b: PassDetection) -> float:
    if a.mask is not None and b.mask is not None:
        return mask_iou(a.mask, b.mask)
    return box_iou(a.box, b.box)


def mean_mask(masks: Sequence[LocalMask], threshold: float = DEFAULT_MASK_THRESHOLD) -> LocalMask:
    """The pixels covered by at least ``threshold`` of ``masks`` (maskAL's mean mask ≥ 0.25)."""
    x0, y0 = min(m.x0 for m in masks), min(m.y0 for m in masks)
    x1, y1 = max(m.x1 for m in masks), max(m.y1 for m in masks)
    total = np.zeros((y1 - y0, x1 - x0), dtype=np.float64)
    for m in masks:
        total[m.y0 - y0 : m.y1 - y0, m.x0 - x0 : m.x1 - x0] += m.mask
    return LocalMask(total / len(masks) >= threshold, x0, y0)


# -- maskAL ------------------------------------------------------------------------------------------------------


def cluster_observations(
    passes: Sequence[Sequence[PassDetection]], iou_threshold: float = DEFAULT_IOU_THRESHOLD
) -> list[list[PassDetection]]:
    """maskAL's greedy clustering: each detection joins the first observation whose first member it overlaps
    with IoU > ``iou_threshold``, else opens a new one (passes and detections in the given order)."""
    groups: list[list[PassDetection]] = []
    for detections in passes:
        for det in detections:
            for group in groups:
                if _overlap(group[0], det) > iou_threshold:
                    group.append(det)
                    break
            else:
                groups.append([det])
    return groups


def semantic_certainty(probs: np.ndarray) -> float:
    """``1 − H(p)/log(K + 1)`` over background + ``K`` classes; the class score itself when ``K = 1`` (maskAL)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.size == 2:
        return float(p[1])
    q = p[p > 0]
    return float(1.0 - (-(q * np.log(q)).sum()) / np.log(p.size))


def observation(
    members: Sequence[PassDetection], n_passes: int, mask_threshold: float = DEFAULT_MASK_THRESHOLD
) -> Observation:
    """maskAL's terms for one cluster of detections (see the module docstring)."""
    if not members or n_passes < 1:
        raise ValueError("an observation needs members and at least one pass")
    u_sem = float(np.mean([semantic_certainty(m.probs) for m in members]))
    centre = np.mean([m.box for m in members], axis=0)
    u_box = float(np.mean([box_iou(m.box, centre) for m in members]))
    masks = [m.mask for m in members if m.mask is not None]
    u_mask = 1.0
    if masks:
        reference = mean_mask(masks, mask_threshold)
        # a member without a mask (it cannot be compared) counts as no overlap
        u_mask = float(np.sum([mask_iou(m, reference) for m in masks]) / len(members))
    return Observation(tuple(members), u_sem=u_sem, u_spl=u_mask * u_box, u_n=min(len(members) / n_passes, 1.0))


def image_certainty(
    passes: Sequence[Sequence[PassDetection]],
    *,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    aggregate: str = "mean",
    empty_certainty: float = DEFAULT_EMPTY_CERTAINTY,
) -> ImageCertainty:
    """maskAL's certainty of one image from the detections of its ``len(passes)`` MC-dropout passes."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate {aggregate!r} not in {AGGREGATES}")
    if not passes:
        raise ValueError("at least one pass is needed")
    groups = cluster_observations(passes, iou_threshold)
    observations = [observation(g, len(passes), mask_threshold) for g in groups]
    if not observations:
        return ImageCertainty(float(empty_certainty), [], len(passes))
    values = [o.u_h for o in observations]
    value = float(np.mean(values) if aggregate == "mean" else np.min(values))
    return ImageCertainty(value, observations, len(passes))
