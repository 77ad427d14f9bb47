"""Placing sprites in a frame and deriving their ground-truth outlines from what was actually drawn.

A sprite is rotated and placed with sub-pixel precision by one small ``cv2.warpAffine`` (premultiplied
colour + alpha together), decayed if needed, clipped to the frame, and alpha-composited onto the frame
region it covers. The ground-truth polygon is the outline of *that* alpha (threshold
:data:`~stickypi_assets.synth.insects.ALPHA_THRESHOLD`, largest external contour, lightly simplified), so
a rasterised ground-truth polygon coincides with the pasted insect up to the simplification tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from stickypi_assets.synth.insects import ALPHA_THRESHOLD, Sprite

#: Colour insects drift towards as they decay (dried, dark brown; BGR).
DECAY_BGR = np.array([28.0, 38.0, 52.0], np.float32)
#: Douglas-Peucker tolerance (pixels) for ground-truth polygons.
POLYGON_EPSILON = 0.7


@dataclass
class PlacedSprite:
    """A sprite as it lands in one frame: patch arrays (already clipped) and its top-left pixel."""

    x0: int
    y0: int
    prem: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    polygon: np.ndarray | None  # int32 (N, 2) frame pixels; None if nothing is above the threshold

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the polygon (``cv2.boundingRect``), or of the patch if there is none."""
        if self.polygon is None:
            return self.x0, self.y0, self.alpha.shape[1], self.alpha.shape[0]
        x, y, w, h = cv2.boundingRect(self.polygon)
        return int(x), int(y), int(w), int(h)

    def mask(self, width: int, height: int) -> np.ndarray:
        """Frame-sized boolean mask of the pixels this sprite owns (alpha at or above the threshold)."""
        out = np.zeros((height, width), bool)
        h, w = self.alpha.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.alpha >= ALPHA_THRESHOLD
        return out


@dataclass
class PosedSprite:
    """A rotated (and decayed) sprite patch whose centre lies at ``(half + fx, half + fy)``.

    It only depends on the sub-pixel part of the position, the angle and the decay, so a still insect is
    posed once and then only translated by whole pixels (camera shake) from frame to frame.
    """

    half: int
    prem: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    polygon: np.ndarray | None  # patch pixels


def pose_sprite(sprite: Sprite, fx: float, fy: float, angle: float, decay: float) -> PosedSprite:
    """Rotate ``sprite`` by ``angle`` degrees (clockwise on screen) about its centre, sub-pixel offset."""
    half = int(math.ceil(sprite.radius)) + 2
    side = 2 * half + 1
    sh, sw = sprite.alpha.shape
    src_c = ((sw - 1) / 2.0, (sh - 1) / 2.0)
    m = cv2.getRotationMatrix2D(src_c, -angle, 1.0)
    m[0, 2] += half + fx - src_c[0]
    m[1, 2] += half + fy - src_c[1]
    rgba = np.dstack([sprite.prem, sprite.alpha])
    warped = cv2.warpAffine(rgba, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    shadow = cv2.warpAffine(sprite.shadow, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    prem, alpha = warped[..., :3], np.clip(warped[..., 3], 0.0, 1.0)
    if decay > 0:
        prem, alpha = _decay(prem, alpha, decay)
    return PosedSprite(half, np.ascontiguousarray(prem), np.ascontiguousarray(alpha), shadow, outline(alpha))


def place_posed(posed: PosedSprite, xi: int, yi: int, width: int, height: int) -> PlacedSprite | None:
    """Put a posed patch with its centre in pixel ``(xi, yi)`` (+ its sub-pixel offset), clipped to the frame.

    Returns ``None`` when the patch falls entirely outside the frame. A clipped patch gets the outline of
    its visible part.
    """
    side = posed.alpha.shape[0]
    x0, y0 = xi - posed.half, yi - posed.half
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + side), min(height, y0 + side)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    offset = np.array([x0, y0], np.int32)
    if (cx0, cy0, cx1, cy1) == (x0, y0, x0 + side, y0 + side):
        polygon = None if posed.polygon is None else posed.polygon + offset
        return PlacedSprite(x0, y0, posed.prem, posed.alpha, posed.shadow, polygon)
    sl = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    alpha = posed.alpha[sl]
    polygon = outline(alpha)
    if polygon is not None:
        polygon = polygon + np.array([cx0, cy0], np.int32)
    return PlacedSprite(cx0, cy0, posed.prem[sl], alpha, posed.shadow[sl], polygon)


def place_sprite(
    sprite: Sprite,
    x: float,
    y: float,
    angle: float,
    decay: float,
    width: int,
    height: int,
) -> PlacedSprite | None:
    """Rotate ``sprite`` by ``angle`` degrees and centre it at ``(x, y)`` (frame pixels), clipped to the frame."""
    xi, yi = math.floor(x), math.floor(y)
    return place_posed(pose_sprite(sprite, x - xi, y - yi, angle, decay), xi, yi, width, height)


def _decay(prem: np.ndarray, alpha: np.ndarray, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """Darken towards dried brown and fade the semi-transparent parts (wings) as ``decay`` goes 0 → 1."""
    k = 0.65 * decay
    prem = prem * (1.0 - k) + alpha[..., None] * DECAY_BGR * k
    fade = np.where(alpha < 0.9, 1.0 - 0.45 * decay, 1.0).astype(np.float32)
    return prem * fade[..., None], alpha * fade


def outline(alpha: np.ndarray) -> np.ndarray | None:
    """Ground-truth polygon (int32 ``(N, 2)``, patch pixels) of an alpha patch, or ``None`` if empty.

    The outer contour of ``alpha >= ALPHA_THRESHOLD``. At small scales thin legs break into fragments;
    each fragment is bridged to the body by a one-pixel line first, so the single polygon keeps the legs
    (as an annotator would draw them) instead of silently dropping them. The contour is simplified with a
    tolerance that shrinks for small insects, and is always a ring of positive area (a one-pixel-wide blob
    becomes its bounding rectangle) so SVG readers never drop it.
    """
    mask = (alpha >= ALPHA_THRESHOLD).astype(np.uint8)
    if not mask.any():
        return None
    mask = _bridge_fragments(mask)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    best = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    area = int(mask.sum())
    epsilon = POLYGON_EPSILON if area >= 400 else POLYGON_EPSILON / 2 if area >= 100 else 0.0
    simple = cv2.approxPolyDP(best, epsilon, True) if epsilon > 0 else best
    if len(simple) >= 3 and cv2.contourArea(simple) > 0:
        return simple.reshape(-1, 2).astype(np.int32)
    if len(best) >= 3 and cv2.contourArea(best) > 0:
        return best.reshape(-1, 2).astype(np.int32)
    x, y, w, h = cv2.boundingRect(best)
    return np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], np.int32)


def _bridge_fragments(mask: np.ndarray) -> np.ndarray:
    """Join every connected component to the largest one with a 1-px line between their closest pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return mask
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1
    mask = mask.copy()
    main = np.argwhere(labels == order[0])[:, ::-1]  # (x, y)
    for label in order[1:]:
        frag = np.argwhere(labels == label)[:, ::-1]
        d = ((frag[:, None, :] - main[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        cv2.line(mask, tuple(int(v) for v in frag[i]), tuple(int(v) for v in main[j]), 1, 1, cv2.LINE_8)
        main = np.vstack([main, frag])
    return mask


def composite(canvas: np.ndarray, placed: PlacedSprite) -> None:
    """Alpha-composite (with contact shadow) onto a uint8 BGR canvas, in place."""
    h, w = placed.alpha.shape
    region = canvas[placed.y0 : placed.y0 + h, placed.x0 : placed.x0 + w].astype(np.float32)
    region *= (1.0 - placed.shadow)[..., None]
    region *= (1.0 - placed.alpha)[..., None]
    region += placed.prem
    np.clip(region + 0.5, 0, 255, out=region)
    canvas[placed.y0 : placed.y0 + h, placed.x0 : placed.x0 + w] = region.astype(np.uint8)


def glare_box(bbox: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """The region a glare occluder covers for an insect bbox (used to avoid hiding neighbours)."""
    x, y, w, h = bbox
    pad = int(math.ceil(0.35 * max(w, h) + 6 * scale + 2))
    return x - pad, y - pad, w + 2 * pad, h + 2 * pad


def draw_glare(frame: np.ndarray, bbox: tuple[int, int, int, int], scale: float, strength: float = 1.0) -> None:
    """A specular highlight (glue droplet, condensation) that completely hides the insect under ``bbox``."""
    gx, gy, gw, gh = glare_box(bbox, scale)
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(0, gx), max(0, gy), min(fw, gx + gw), min(fh, gy + gh)
    if x1 <= x0 or y1 <= y0:
        return
    a = np.zeros((gh, gw), np.float32)
    x, y, w, h = bbox
    centre = (x - gx + w / 2.0, y - gy + h / 2.0)
    axes = (w / 2.0 * 1.45 + 2 * scale + 1, h / 2.0 * 1.45 + 2 * scale + 1)
    cv2.ellipse(
        a,
        (int(centre[0] * 16), int(centre[1] * 16)),
        (int(axes[0] * 16), int(axes[1] * 16)),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        4,
    )
    a = cv2.GaussianBlur(a, (0, 0), max(0.8, 0.08 * max(w, h)))
    inner = np.zeros_like(a)
    cv2.rectangle(inner, (x - gx - 1, y - gy - 1), (x - gx + w + 1, y - gy + h + 1), 1.0, -1)
    a = np.maximum(a, inner) * strength
    a = a[y0 - gy : y1 - gy, x0 - gx : x1 - gx]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    colour = np.array([236.0, 250.0, 250.0], np.float32)
    region = region * (1 - a[..., None]) + colour * a[..., None]
    frame[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def render_ground_truth_preview(
    frame_bgr: np.ndarray,
    instances: Iterable[object],
    *,
    labels: Sequence[str] | None = None,
    colour: tuple[int, int, int] = (255, 0, 0),
    colours: Sequence[tuple[int, int, int]] | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of ``frame_bgr`` with every ground-truth outline drawn (for eyes, docs and debugging).

    ``instances`` are :class:`~stickypi_assets.formats.annotations.Instance` objects or ``(N, 2)``
    polygons. Outlines are drawn in ``colour`` (BGR), or ``colours[i]`` per instance (e.g. by taxon);
    optional ``labels`` (one per instance) are written beside each outline.
    """
    out = frame_bgr.copy()
    h, w = out.shape[:2]
    t = thickness or max(1, int(round(w / 1300)))
    polys = [np.asarray(getattr(i, "polygon", i), np.int32).reshape(-1, 1, 2) for i in instances]
    if colours is None:
        cv2.polylines(out, polys, True, colour, t, cv2.LINE_AA)
    else:
        for poly, c in zip(polys, colours, strict=True):
            cv2.polylines(out, [poly], True, tuple(int(v) for v in c), t, cv2.LINE_AA)
    if labels is not None:
        font_scale = max(0.35, w / 3200)
        for poly, label in zip(polys, labels, strict=True):
            x, y, _, _ = cv2.boundingRect(poly)
            org = (int(x), int(max(10, y - 3)))
            cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), t + 2, cv2.LINE_AA)
            cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), t, cv2.LINE_AA)
    return out
