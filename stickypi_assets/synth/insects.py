"""Insect sprites: RGBA patches that are pasted onto the card, from two sources.

* **Procedural** (default): each taxon of :mod:`stickypi_assets.synth.taxa` is drawn with OpenCV
  primitives (legs, body segments, semi-transparent veined wings, eyes, spots) at 4x the output
  resolution and area-downsampled, which gives anti-aliased edges and sub-pixel legs without any
  per-pixel Python. Individuals of one taxon vary in size, colour, leg and wing posture (one seed each).
* **Real cut-outs** (``sprites_dir``): every annotated polygon of the UID SVGs in a folder is masked out
  of the embedded JPEG; the same images, with their insects inpainted, become card backgrounds
  (:func:`real_background`).

Sprites hold *premultiplied* colour (``prem = colour * alpha``): rotating and resampling premultiplied
patches never produces dark or light fringes at the outline. The ground-truth polygon is derived from the
alpha of the sprite *as placed in the frame* (:mod:`stickypi_assets.synth.render`), so it follows
rotation, sub-pixel placement, decay and clipping exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from stickypi_assets.synth.taxa import REAL_TAXON, TAXA, TaxonSpec

log = logging.getLogger(__name__)

#: Supersampling factor of procedural drawing.
SUPERSAMPLE = 4
#: Alpha at or above which a pixel belongs to the insect (ground truth and the rendered outline agree).
ALPHA_THRESHOLD = 0.4
#: Strength of the soft contact shadow under each insect (not part of the ground truth).
SHADOW_STRENGTH = 0.28


@dataclass
class Sprite:
    """An insect image patch centred on the insect, head up (angle 0).

    ``prem``: premultiplied BGR float32 ``(h, w, 3)`` in 0-255; ``alpha``: float32 ``(h, w)`` in [0, 1];
    ``shadow``: float32 ``(h, w)`` darkening under the insect (blurred, offset alpha).
    """

    prem: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    taxon: str
    source: str

    @property
    def radius(self) -> float:
        """Distance from the patch centre to its farthest opaque pixel: room needed for any rotation."""
        ys, xs = np.nonzero(self.alpha > 0.02)
        if xs.size == 0:
            return 1.0
        h, w = self.alpha.shape
        return float(np.sqrt(((xs - (w - 1) / 2) ** 2 + (ys - (h - 1) / 2) ** 2).max())) + 1.0

    @property
    def area(self) -> int:
        return int((self.alpha >= ALPHA_THRESHOLD).sum())


# -- painting helpers ---------------------------------------------------------------------------------------


class _Painter:
    """Premultiplied 'over' compositing of uint8 masks onto a supersampled canvas (bbox-limited)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.prem = np.zeros((size, size, 3), np.float32)
        self.alpha = np.zeros((size, size), np.float32)

    def new_mask(self) -> np.ndarray:
        return np.zeros((self.size, self.size), np.uint8)

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.size / 2, self.size / 2])

    def ellipse(
        self, centre: tuple[float, float], axes: tuple[float, float], colour: tuple[float, float, float],
        opacity: float = 1.0,
    ) -> np.ndarray:  # fmt: skip
        """Paint a filled ellipse (a body part); returns its mask, which later details are clipped to."""
        mask = self.new_mask()
        _ellipse(mask, centre, axes)
        self.paint(mask, colour, opacity)
        return mask

    def line(
        self, pts: list[tuple[float, float]], thickness: float, colour: tuple[float, float, float],
        opacity: float = 1.0, *, clip: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Paint a polyline (a seam, a proboscis), kept inside the ``clip`` mask when one is given."""
        mask = self.new_mask()
        _polyline(mask, pts, thickness)
        self.paint(mask if clip is None else cv2.bitwise_and(mask, clip), colour, opacity)

    def highlight(self, centre: tuple[float, float], axes: tuple[float, float], blur: float, factor: float) -> None:
        """Brighten (or darken) the colour under a blurred ellipse: the gloss of a body."""
        mask = self.new_mask()
        _ellipse(mask, centre, axes)
        self.shade(cv2.GaussianBlur(mask, (0, 0), blur), factor)

    def paint(self, mask: np.ndarray, colour: tuple[float, float, float], opacity: float = 1.0) -> None:
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0 or h == 0 or opacity <= 0:
            return
        a = mask[y : y + h, x : x + w].astype(np.float32) * (opacity / 255.0)
        keep = 1.0 - a
        self.prem[y : y + h, x : x + w] *= keep[..., None]
        self.prem[y : y + h, x : x + w] += a[..., None] * np.asarray(colour, np.float32)
        self.alpha[y : y + h, x : x + w] = self.alpha[y : y + h, x : x + w] * keep + a

    def shade(self, mask: np.ndarray, factor: float) -> None:
        """Multiply colour (not alpha) inside a soft mask: highlights (>1) and shading (<1)."""
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0 or h == 0:
            return
        m = mask[y : y + h, x : x + w].astype(np.float32) / 255.0
        f = 1.0 + (factor - 1.0) * m
        region = self.prem[y : y + h, x : x + w]
        region *= f[..., None]
        np.minimum(region, 255.0 * self.alpha[y : y + h, x : x + w, None], out=region)


def _pt(p: tuple[float, float] | np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))


def _ellipse(mask: np.ndarray, c: tuple[float, float], axes: tuple[float, float], angle: float = 0.0) -> None:
    cv2.ellipse(
        mask,
        _pt(c),
        (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16)))),
        angle,
        0,
        360,
        255,
        -1,
        cv2.LINE_AA,
        4,
    )


def _polyline(mask: np.ndarray, pts: list[tuple[float, float]], thickness: float) -> None:
    arr = np.array([_pt(p) for p in pts], np.int32).reshape(-1, 1, 2)
    cv2.polylines(mask, [arr], False, 255, max(1, int(round(thickness))), cv2.LINE_AA, 4)


def _jitter_colour(colour: tuple[int, int, int], rng: np.random.Generator, amount: float = 0.1) -> tuple:
    f = 1.0 + rng.uniform(-amount, amount)
    tint = rng.uniform(-amount / 2, amount / 2, 3)
    return tuple(float(np.clip(c * f * (1 + t), 0, 255)) for c, t in zip(colour, tint, strict=True))


def _body_colours(spec: TaxonSpec, rng: np.random.Generator, body_amount: float = 0.1) -> tuple[tuple, tuple]:
    """This individual's body and dark colours (in that order from ``rng``): the taxon's, slightly varied."""
    return _jitter_colour(spec.body, rng, body_amount), _jitter_colour(spec.dark, rng, 0.05)


# -- body plans ---------------------------------------------------------------------------------------------
# Coordinates: supersampled pixels, origin at the canvas centre, head towards -y. ``u`` = body length.


def _legs(
    p: _Painter,
    rng: np.random.Generator,
    c: np.ndarray,
    u: float,
    attach_y: tuple[float, float, float],
    half_width: float,
    lengths: tuple[float, float, float],
    thickness: float,
    colour: tuple,
) -> None:
    mask = p.new_mask()
    base_angles = (-50.0, 5.0, 45.0)  # degrees from the sideways direction, negative = forwards
    for side in (-1, 1):
        for ay, length, base in zip(attach_y, lengths, base_angles, strict=True):
            ang = math.radians(base + rng.normal(0, 10))
            knee = math.radians(base + rng.normal(0, 12) + (25 if base > 0 else -25))
            hip = c + np.array([side * half_width * 0.6, ay])
            femur = hip + length * 0.45 * u * np.array([side * math.cos(ang), math.sin(ang)])
            tibia = femur + length * 0.55 * u * np.array([side * math.cos(knee), math.sin(knee)])
            _polyline(mask, [tuple(hip), tuple(femur), tuple(tibia)], thickness)
    p.paint(mask, colour)


def _wings(
    p: _Painter,
    rng: np.random.Generator,
    c: np.ndarray,
    u: float,
    spec: TaxonSpec,
    root_y: float,
    length: float,
    width: float,
    spread: float,
    spot: bool = False,
) -> None:
    """Two veined, semi-transparent wings rooted on the thorax, swept back by ``spread`` degrees."""
    membrane = p.new_mask()
    veins = p.new_mask()
    spots = p.new_mask()
    for side in (-1, 1):
        ang = math.radians(90 - side * (spread + rng.normal(0, 4)))  # 90 deg = straight back (+y)
        direction = np.array([math.cos(ang), math.sin(ang)])
        root = c + np.array([side * 0.05 * u, root_y])
        centre = root + direction * length * u / 2
        _ellipse(membrane, tuple(centre), (length * u / 2, width * u / 2), math.degrees(ang))
        normal = np.array([-direction[1], direction[0]])
        for k in (-0.25, 0.05, 0.3):
            tip = root + direction * length * u * 0.92 + normal * k * width * u
            _polyline(veins, [tuple(root), tuple(tip)], max(1.0, 0.012 * u))
        if spot:
            _ellipse(spots, tuple(root + direction * length * u * 0.8), (0.08 * u, 0.08 * u))
    p.paint(membrane, spec.wing, spec.wing_opacity)
    p.paint(cv2.bitwise_and(veins, membrane), spec.dark, min(1.0, spec.wing_opacity + 0.3))
    if spot:
        p.paint(cv2.bitwise_and(spots, membrane), (30, 30, 35), 0.85)


def _draw_fly(p: _Painter, rng: np.random.Generator, u: float, spec: TaxonSpec, small: bool) -> None:
    c = p.centre
    body, dark = _body_colours(spec, rng)
    _legs(p, rng, c, u, (-0.22 * u, -0.14 * u, -0.06 * u), 0.26 * u, (0.5, 0.55, 0.62), 0.035 * u, dark)
    abdomen = p.ellipse((c[0], c[1] + 0.18 * u), (0.17 * u, 0.3 * u), body)
    stripes = p.new_mask()
    for k in range(3):
        y = c[1] + (0.06 + 0.11 * k) * u
        _polyline(stripes, [(c[0] - 0.17 * u, y), (c[0] + 0.17 * u, y)], 0.03 * u)
    p.paint(cv2.bitwise_and(stripes, abdomen), dark, 0.7)
    _wings(p, rng, c, u, spec, -0.12 * u, 0.8 if small else 0.74, 0.3, rng.uniform(15, 42), spot=small)
    thorax = p.ellipse((c[0], c[1] - 0.15 * u), (0.16 * u, 0.16 * u), body)
    if not small:  # dorsal stripes of a house fly
        lines = p.new_mask()
        for dx in (-0.06, 0.0, 0.06):
            _polyline(lines, [(c[0] + dx * u, c[1] - 0.27 * u), (c[0] + dx * u, c[1] - 0.04 * u)], 0.025 * u)
        p.paint(cv2.bitwise_and(lines, thorax), dark, 0.6)
    p.ellipse((c[0], c[1] - 0.36 * u), (0.14 * u, 0.09 * u), body)
    eyes = p.new_mask()
    for side in (-1, 1):
        _ellipse(eyes, (c[0] + side * 0.085 * u, c[1] - 0.37 * u), (0.065 * u, 0.08 * u))
    p.paint(eyes, _jitter_colour(spec.accent, rng, 0.08))
    p.highlight((c[0] - 0.05 * u, c[1] - 0.18 * u), (0.05 * u, 0.05 * u), 0.03 * u + 0.5, 1.5)


def _draw_gnat(p: _Painter, rng: np.random.Generator, u: float, spec: TaxonSpec) -> None:
    c = p.centre
    body, dark = _body_colours(spec, rng)
    _legs(p, rng, c, u, (-0.2 * u, -0.13 * u, -0.06 * u), 0.14 * u, (0.7, 0.8, 0.95), 0.025 * u, dark)
    antennae = p.new_mask()
    for side in (-1, 1):
        bend = rng.uniform(15, 35)
        tip1 = c + np.array([side * 0.12 * u, -0.55 * u])
        tip2 = tip1 + 0.2 * u * np.array([side * math.sin(math.radians(bend)), -math.cos(math.radians(bend))])
        _polyline(antennae, [(c[0], c[1] - 0.36 * u), tuple(tip1), tuple(tip2)], 0.022 * u)
    p.paint(antennae, dark)
    p.ellipse((c[0], c[1] + 0.16 * u), (0.09 * u, 0.3 * u), body)
    _wings(p, rng, c, u, spec, -0.15 * u, 0.68, 0.24, rng.uniform(18, 34))
    p.ellipse((c[0], c[1] - 0.16 * u), (0.11 * u, 0.13 * u), body)
    p.ellipse((c[0], c[1] - 0.33 * u), (0.07 * u, 0.06 * u), dark)


def _draw_mosquito(p: _Painter, rng: np.random.Generator, u: float, spec: TaxonSpec) -> None:
    c = p.centre
    body, dark = _body_colours(spec, rng)
    _legs(p, rng, c, u, (-0.22 * u, -0.17 * u, -0.12 * u), 0.1 * u, (1.0, 1.15, 1.35), 0.022 * u, dark)
    p.line([(c[0], c[1] - 0.33 * u), (c[0], c[1] - 0.58 * u)], 0.025 * u, dark)
    abdomen = p.ellipse((c[0], c[1] + 0.2 * u), (0.06 * u, 0.33 * u), body)
    bands = p.new_mask()
    for k in range(5):
        y = c[1] + (-0.05 + 0.11 * k) * u
        _polyline(bands, [(c[0] - 0.07 * u, y), (c[0] + 0.07 * u, y)], 0.025 * u)
    p.paint(cv2.bitwise_and(bands, abdomen), (150, 160, 165), 0.6)
    _wings(p, rng, c, u, spec, -0.16 * u, 0.62, 0.13, rng.uniform(4, 14))
    p.ellipse((c[0], c[1] - 0.17 * u), (0.09 * u, 0.11 * u), body)
    p.ellipse((c[0], c[1] - 0.31 * u), (0.055 * u, 0.05 * u), dark)


def _draw_leafhopper(p: _Painter, rng: np.random.Generator, u: float, spec: TaxonSpec) -> None:
    c = p.centre
    body, dark = _body_colours(spec, rng, 0.12)
    _legs(p, rng, c, u, (-0.2 * u, -0.05 * u, 0.05 * u), 0.2 * u, (0.25, 0.3, 0.45), 0.03 * u, dark)
    w = rng.uniform(0.23, 0.28) * u
    outline = np.array(
        [
            (c[0], c[1] - 0.5 * u),
            (c[0] + w * 0.9, c[1] - 0.38 * u),
            (c[0] + w, c[1] - 0.2 * u),
            (c[0] + w * 0.85, c[1] + 0.3 * u),
            (c[0] + w * 0.3, c[1] + 0.5 * u),
            (c[0] - w * 0.3, c[1] + 0.5 * u),
            (c[0] - w * 0.85, c[1] + 0.3 * u),
            (c[0] - w, c[1] - 0.2 * u),
            (c[0] - w * 0.9, c[1] - 0.38 * u),
        ]
    )
    mask = p.new_mask()
    cv2.fillPoly(mask, [np.round(outline * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    p.paint(mask, body)
    # folded forewings: a paler V over the back, separated by a darker seam
    tegmina = p.new_mask()
    for side in (-1, 1):
        pts = np.array(
            [
                (c[0], c[1] - 0.18 * u),
                (c[0] + side * w * 0.92, c[1] - 0.12 * u),
                (c[0] + side * w * 0.8, c[1] + 0.3 * u),
                (c[0] + side * w * 0.05, c[1] + 0.49 * u),
            ]
        )
        cv2.fillPoly(tegmina, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    p.paint(cv2.bitwise_and(tegmina, mask), _jitter_colour(spec.wing, rng, 0.08), spec.wing_opacity)
    p.line([(c[0], c[1] - 0.18 * u), (c[0], c[1] + 0.49 * u)], 0.025 * u, dark, 0.8, clip=mask)
    eyes = p.new_mask()
    for side in (-1, 1):
        _ellipse(eyes, (c[0] + side * w * 0.62, c[1] - 0.36 * u), (0.06 * u, 0.045 * u))
    p.paint(eyes, dark, 0.9)
    p.highlight((c[0] - 0.3 * w, c[1] - 0.05 * u), (0.05 * u, 0.2 * u), 0.03 * u + 0.5, 1.25)


def _draw_beetle(p: _Painter, rng: np.random.Generator, u: float, spec: TaxonSpec) -> None:
    c = p.centre
    body, dark = _body_colours(spec, rng, 0.12)
    _legs(p, rng, c, u, (-0.15 * u, 0.0, 0.12 * u), 0.3 * u, (0.25, 0.28, 0.3), 0.05 * u, dark)
    elytra = p.ellipse((c[0], c[1] + 0.08 * u), (0.42 * u, 0.4 * u), body)
    spots = p.new_mask()
    n_spots = int(rng.integers(2, 8))
    for _ in range(n_spots):
        r = rng.uniform(0.05, 0.09) * u
        sx = rng.uniform(0.08, 0.3) * u
        sy = rng.uniform(-0.15, 0.32) * u
        for side in (-1, 1):  # symmetric, as on real ladybirds
            _ellipse(spots, (c[0] + side * sx, c[1] + sy), (r, r))
    p.paint(cv2.bitwise_and(spots, elytra), dark, 0.95)
    p.line([(c[0], c[1] - 0.25 * u), (c[0], c[1] + 0.47 * u)], 0.025 * u, dark, 0.6, clip=elytra)
    pronotum = p.ellipse((c[0], c[1] - 0.3 * u), (0.3 * u, 0.13 * u), dark)
    marks = p.new_mask()
    for side in (-1, 1):
        _ellipse(marks, (c[0] + side * 0.18 * u, c[1] - 0.31 * u), (0.07 * u, 0.06 * u))
    p.paint(cv2.bitwise_and(marks, pronotum), spec.accent, 0.9)
    p.ellipse((c[0], c[1] - 0.43 * u), (0.14 * u, 0.06 * u), dark)
    p.highlight((c[0] - 0.15 * u, c[1] - 0.05 * u), (0.09 * u, 0.07 * u), 0.04 * u + 0.5, 1.9)


def procedural_sprite(taxon_key: str, seed: int, px_per_mm: float) -> Sprite:
    """Draw one individual of a taxon; the same (taxon, seed, resolution) always gives the same sprite."""
    spec = TAXA[taxon_key]
    rng = np.random.default_rng(seed)
    length_px = rng.uniform(*spec.length_mm) * px_per_mm
    u = length_px * SUPERSAMPLE
    size = int(math.ceil(u * spec.extent * 1.25 / SUPERSAMPLE) + 6) * SUPERSAMPLE
    painter = _Painter(size)
    if spec.plan == "fly":
        _draw_fly(painter, rng, u, spec, small=spec.length_mm[1] < 4)
    elif spec.plan == "gnat":
        _draw_gnat(painter, rng, u, spec)
    elif spec.plan == "mosquito":
        _draw_mosquito(painter, rng, u, spec)
    elif spec.plan == "leafhopper":
        _draw_leafhopper(painter, rng, u, spec)
    elif spec.plan == "beetle":
        _draw_beetle(painter, rng, u, spec)
    else:  # pragma: no cover - registry and plans are defined together
        raise ValueError(f"unknown body plan {spec.plan!r}")
    small = size // SUPERSAMPLE
    prem = cv2.resize(painter.prem, (small, small), interpolation=cv2.INTER_AREA)
    alpha = np.clip(cv2.resize(painter.alpha, (small, small), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    return _finish(prem, alpha, spec.taxon, f"procedural:{taxon_key}", px_per_mm)


def _finish(
    prem: np.ndarray, alpha: np.ndarray, taxon: str, source: str, px_per_mm: float, soften: bool = True
) -> Sprite:
    """Crop to the insect (plus room), centre it, and add its contact shadow."""
    ys, xs = np.nonzero(alpha > 0.01)
    if xs.size == 0:
        raise ValueError(f"empty sprite ({source})")
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    half = int(math.ceil(max(xs.max() - cx, cx - xs.min(), ys.max() - cy, cy - ys.min()))) + 4
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    side = 2 * half + 1
    out_p = np.zeros((side, side, 3), np.float32)
    out_a = np.zeros((side, side), np.float32)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(alpha.shape[1], x0 + side), min(alpha.shape[0], y0 + side)
    out_p[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = prem[sy0:sy1, sx0:sx1]
    out_a[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = alpha[sy0:sy1, sx0:sx1]
    soft = 0.05 * px_per_mm  # lens softness: ~0.7 px at full resolution
    if soften and soft >= 0.3:
        out_p = cv2.GaussianBlur(out_p, (0, 0), soft)
        out_a = cv2.GaussianBlur(out_a, (0, 0), soft)
    sigma = max(0.6, 0.08 * px_per_mm)
    shift = max(1, int(round(0.1 * px_per_mm)))
    shadow = cv2.GaussianBlur(out_a, (0, 0), sigma)
    shadow = np.roll(shadow, (shift, shift), axis=(0, 1))
    return Sprite(prem=out_p, alpha=out_a, shadow=np.clip(shadow, 0, 1) * SHADOW_STRENGTH, taxon=taxon, source=source)


# -- real cut-outs -----------------------------------------------------------------------------------------


@dataclass
class RealSource:
    """One UID SVG of the sprites folder: its image and its insect polygons (JPEG pixels)."""

    name: str
    image: np.ndarray
    polygons: list[np.ndarray]


@dataclass
class RealPool:
    """Real cut-outs at *native* resolution plus the source images (for backgrounds)."""

    sources: list[RealSource]
    sprites: list[Sprite]
    native_width: list[int]  # per sprite: width of the image it was cut from


#: Real cut-outs smaller than this (pixels at native resolution) are specks, not usable insects.
MIN_REAL_AREA = 60
#: Real cut-outs larger than this side (native pixels) are clusters or annotation mistakes.
MAX_REAL_SIDE = 500
#: Minimum colour distance (BGR) between a cut-out and the card around it (see :func:`_stands_out`).
MIN_CONTRAST = 12.0
#: Card colour used if a source image is entirely covered by annotations (BGR).
CARD_FALLBACK = (60.0, 190.0, 180.0)


def real_sprite_from_polygon(image: np.ndarray, polygon: np.ndarray, source: str) -> Sprite | None:
    """Mask one annotated insect out of its image (anti-aliased outline), or ``None`` if unusable."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    x, y, w, h = cv2.boundingRect(np.round(poly).astype(np.int32))
    ih, iw = image.shape[:2]
    if w > MAX_REAL_SIDE or h > MAX_REAL_SIDE or x < 1 or y < 1 or x + w >= iw - 1 or y + h >= ih - 1:
        return None
    if cv2.contourArea(poly.astype(np.float32)) < MIN_REAL_AREA:
        return None
    pad = 3
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(iw, x + w + pad), min(ih, y + h + pad)
    crop = image[y0:y1, x0:x1].astype(np.float32)
    big = np.zeros(((y1 - y0) * SUPERSAMPLE, (x1 - x0) * SUPERSAMPLE), np.uint8)
    pts = np.round((poly - [x0 - 0.5, y0 - 0.5]) * SUPERSAMPLE * 16 - 8).astype(np.int32)
    cv2.fillPoly(big, [pts], 255, cv2.LINE_AA, 4)
    alpha = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    if (alpha >= ALPHA_THRESHOLD).sum() < MIN_REAL_AREA // 2 or not _stands_out(image, poly, x, y, w, h):
        return None
    return _finish(crop * alpha[..., None], alpha, REAL_TAXON, source, px_per_mm=14.0 * iw / 2592, soften=False)


def _stands_out(image: np.ndarray, poly: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    """Whether the polygon's inside differs in colour from a ring around it.

    A few human annotations are misaligned with their insect (drawn on another frame, or moved); such a
    cut-out would be a piece of bare card labelled as an insect, so it is not used as a sprite.
    """
    ih, iw = image.shape[:2]
    pad = 12
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(iw, x + w + pad), min(ih, y + h + pad)
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round(poly - [x0, y0]).astype(np.int32).reshape(-1, 1, 2)], 1)
    ring = cv2.dilate(inside, np.ones((2 * pad - 5, 2 * pad - 5), np.uint8)) - inside
    region = image[y0:y1, x0:x1].astype(np.float32)
    if not inside.any() or not ring.any():
        return False
    return float(np.linalg.norm(region[inside > 0].mean(axis=0) - region[ring > 0].mean(axis=0))) > MIN_CONTRAST


@lru_cache(maxsize=2)
def load_real_pool(sprites_dir: str) -> RealPool:
    """Read every ``*.svg`` of ``sprites_dir`` (sorted by name, so the pool is deterministic)."""
    from stickypi_assets.formats.errors import FormatError
    from stickypi_assets.formats.uid_svg import read_uid_svg

    folder = Path(sprites_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"sprites folder {folder} does not exist (expected UID SVGs with insect paths)")
    sources: list[RealSource] = []
    sprites: list[Sprite] = []
    widths: list[int] = []
    for path in sorted(folder.glob("*.svg")):
        try:
            doc = read_uid_svg(path)
            image = doc.decode_image()
        except (FormatError, OSError) as exc:
            log.warning("skipping sprite source %s: %s", path.name, exc)
            continue
        polygons = [inst.polygon for inst in doc.instances]
        sources.append(RealSource(name=path.stem, image=image, polygons=polygons))
        for i, poly in enumerate(polygons):
            sprite = real_sprite_from_polygon(image, poly, f"real:{path.stem}#{i}")
            if sprite is not None:
                sprites.append(sprite)
                widths.append(image.shape[1])
    if not sprites:
        raise ValueError(f"no usable insect polygons in the UID SVGs of {folder}")
    return RealPool(sources=sources, sprites=sprites, native_width=widths)


def scale_sprite(sprite: Sprite, factor: float) -> Sprite:
    """Resample a sprite (real cut-outs are stored at native resolution)."""
    if abs(factor - 1.0) < 1e-6:
        return sprite
    side = max(3, int(round(sprite.alpha.shape[0] * factor)) | 1)
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return Sprite(
        prem=cv2.resize(sprite.prem, (side, side), interpolation=interp),
        alpha=np.clip(cv2.resize(sprite.alpha, (side, side), interpolation=interp), 0, 1),
        shadow=cv2.resize(sprite.shadow, (side, side), interpolation=interp),
        taxon=sprite.taxon,
        source=sprite.source,
    )


def real_background(source: RealSource, width: int, height: int) -> np.ndarray:
    """The source image with its annotated insects removed, resized to ``width`` x ``height``.

    Insects (and a margin for their shadows) are replaced by a normalised convolution of the surrounding
    card (a blur that ignores masked pixels, the cheap cousin of inpainting: ``cv2.inpaint`` leaves
    insect-shaped smudges where insects sat on shadows) plus grain, blended in with a feathered edge.
    """
    img = source.image
    if source.polygons:
        h, w = img.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in source.polygons], 255)
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
        hw, hh = max(8, w // 4), max(8, h // 4)  # the fill is smooth: quarter resolution is plenty
        small = cv2.resize(img, (hw, hh), interpolation=cv2.INTER_AREA).astype(np.float32)
        keep = 1.0 - cv2.resize(mask, (hw, hh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        keep = np.where(keep > 0.99, 1.0, 0.0).astype(np.float32)
        est = np.zeros_like(small)
        filled = np.zeros((hh, hw), bool)
        for sigma in (4.0, 12.0, 36.0):  # wider and wider until every hole is covered
            den = cv2.GaussianBlur(keep, (0, 0), sigma)
            num = cv2.GaussianBlur(small * keep[..., None], (0, 0), sigma)
            ok = (den > 0.05) & ~filled
            est[ok] = num[ok] / den[ok, None]
            filled |= ok
        if not filled.all():
            est[~filled] = small[keep > 0].mean(axis=0) if keep.any() else CARD_FALLBACK
        up = cv2.resize(est, (w, h), interpolation=cv2.INTER_LINEAR)
        grain = np.random.default_rng(len(source.polygons)).standard_normal((h, w, 1), dtype=np.float32) * 2.0
        feather = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 3.0)[..., None]
        img = np.clip(img * (1 - feather) + (up + grain) * feather + 0.5, 0, 255).astype(np.uint8)
    interp = cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)
