"""Synthetic SIM pairs from one real UID image: the later frame is the earlier one moved and perturbed.

No grouped SIM training data survives in the public Sticky Pi data (reference section 10), so tests build
SiamSVG-like pairs from a real annotated image: frame 1 = frame 0 shifted by a few pixels, with a
brightness change and noise; each insect's outline is moved with the image plus a few pixels of jitter
(detector noise); some insects "escape" (their pixels are inpainted away and their outline dropped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.sim_svg import SimPair
from stickypi_assets.formats.uid_svg import UidSvg

DEVICE = "5595c586"


def region(image: np.ndarray, instances: list[Instance], x0: int, x1: int) -> tuple[np.ndarray, list[Instance]]:
    """Columns ``[x0, x1)`` of the image and the instances whose bbox lies inside, shifted to the region."""
    sub = np.ascontiguousarray(image[:, x0:x1])
    kept = []
    for inst in instances:
        bx, by, bw, bh = inst.bbox
        if bx >= x0 + 2 and bx + bw <= x1 - 2 and by >= 2 and by + bh <= image.shape[0] - 2:
            kept.append(inst.shifted(-x0, 0))
    return sub, kept


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


def moved_pair(
    image: np.ndarray, instances: list[Instance], rng: np.random.Generator, when: datetime,
    escape_prob: float = 0.2, max_shift: int = 8, jitter: int = 3,
) -> SimPair:
    """A :class:`SimPair` (frame 0 = ``image``) with groups for the insects still there in frame 1."""
    h, w = image.shape[:2]
    dx, dy = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    later = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    later = later.astype(np.float32) * rng.uniform(0.9, 1.1) + rng.normal(0, 3, size=later.shape)
    later = np.clip(later, 0, 255).astype(np.uint8)
    escaped = rng.random(len(instances)) < escape_prob
    mask = np.zeros((h, w), dtype=np.uint8)
    moved: list[tuple[int, Instance]] = []
    for i, inst in enumerate(instances):
        shifted = inst.shifted(dx, dy)
        if escaped[i]:
            cv2.fillPoly(mask, [shifted.polygon], 255)
            continue
        jx, jy = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
        moved.append((i, shifted.shifted(jx, jy)))
    if mask.any():
        later = cv2.inpaint(later, cv2.dilate(mask, np.ones((9, 9), np.uint8)), 5, cv2.INPAINT_TELEA)
    order = rng.permutation(len(moved))
    instances1 = [moved[k][1] for k in order]
    groups = [(moved[k][0], n) for n, k in enumerate(order)]
    frame0 = UidSvg(jpeg_bytes=_jpeg(image), width=w, height=h, metadata={}, instances=list(instances))
    frame1 = UidSvg(jpeg_bytes=_jpeg(later), width=w, height=h, metadata={}, instances=instances1)
    return SimPair(frame0=frame0, frame1=frame1, groups=groups, device=DEVICE, datetime0=when,
                   datetime1=when + timedelta(seconds=int(rng.integers(900, 1500))))


def pair_time(k: int) -> datetime:
    return datetime(2020, 7, 15, 0, 0, 0, tzinfo=UTC) + timedelta(hours=k)


def moved_sequence(
    image: np.ndarray, instances: list[Instance], rng: np.random.Generator, n_frames: int, start: datetime,
    escape_prob: float = 0.05, max_shift: int = 4, jitter: int = 2,
):
    """Tracker frames: each frame is the previous one moved a little; insects escape now and then.

    Every instance is named ``g<k>`` after the insect it shows (ground truth for checking tuboids).
    """
    from stickypi_assets.ml.sim.features import Frame

    h, w = image.shape[:2]
    current = image.copy()
    alive = {f"g{k}": inst for k, inst in enumerate(instances)}
    frames = []
    for k in range(n_frames):
        if k:
            dx, dy = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
            current = cv2.warpAffine(current, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                                     borderMode=cv2.BORDER_REFLECT)
            mask = np.zeros((h, w), dtype=np.uint8)
            moved = {}
            for name, inst in alive.items():
                shifted = inst.shifted(dx, dy)
                if rng.random() < escape_prob:
                    cv2.fillPoly(mask, [shifted.polygon], 255)
                else:
                    moved[name] = shifted
            if mask.any():
                current = cv2.inpaint(current, cv2.dilate(mask, np.ones((9, 9), np.uint8)), 5, cv2.INPAINT_TELEA)
            alive = moved
        noisy = np.clip(current.astype(np.float32) * rng.uniform(0.95, 1.05) + rng.normal(0, 3, current.shape), 0, 255)
        shown = []
        for name, inst in alive.items():
            jx, jy = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
            shown.append(Instance(polygon=inst.shifted(jx, jy).polygon, name=name))
        when = start + timedelta(seconds=1200 * k)
        frames.append(Frame(key=f"{DEVICE}.{when:%Y-%m-%d_%H-%M-%S}", datetime=when, instances=shown,
                            image=noisy.astype(np.uint8)))
    return frames
