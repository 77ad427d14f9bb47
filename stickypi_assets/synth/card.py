"""The yellow sticky card and the light falling on it.

The card texture is built once per card (every ``card_days``), slightly larger than the frame so camera
shake is a crop offset rather than a warp. Everything that changes per frame is low-frequency (lighting,
vegetation shadows, flash hotspot), so it is computed on a grid 8x coarser than the frame and upscaled:
per-frame cost stays a few milliseconds at 2592 x 1944 and no per-pixel Python ever runs.

Lighting model (all gains per BGR channel, applied multiplicatively to the card with its insects):

* ``daylight(t)`` in [0, 1] from local solar time (``utc_offset_h``, ``day_length_h``), with an hour of
  twilight; clouds modulate it slowly.
* Day frames: ambient light with a daylight white balance, a mild vignette, and moving vegetation
  shadows (a card-specific pattern that drifts with the sun).
* Night frames: lit only by the device's flash: cooler (bluer) cast, bright centre, dark corners.
  A few night frames are ``night_dark`` (the flash did not fire): nearly black and noisy.
* The camera's auto-exposure scales the total so day and flash frames have comparable brightness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from stickypi_assets.synth.config import SynthConfig

#: Base colour of a yellow sticky card under neutral light (BGR).
CARD_BGR = (52.0, 206.0, 196.0)
#: Coarse grid factor for lighting maps.
LIGHT_GRID = 8
#: Gains are stored as uint8 in units of 1/GAIN_UNIT (so up to ~2x).
GAIN_UNIT = 128.0

DAY_WB = np.array([0.85, 0.9, 0.86], np.float32)
FLASH_WB = np.array([1.22, 1.0, 0.9], np.float32)
FLASH_POWER = 0.8


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], octaves: tuple[tuple[int, float], ...]
) -> np.ndarray:
    """Sum of random fields generated at a few coarse sizes and upscaled (value noise), float32."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    for cells, amp in octaves:
        gh, gw = max(2, int(round(cells * h / max(h, w)))), max(2, cells)
        coarse = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return out


def procedural_card(config: SynthConfig, rng: np.random.Generator, width: int, height: int, device: str) -> np.ndarray:
    """A yellow card ``height`` x ``width`` BGR uint8: tint, blotches, grain, grid, dirt, fibres, marker."""
    s = config.scale
    tint = np.array(CARD_BGR, np.float32) * rng.uniform(0.94, 1.04, 3).astype(np.float32)
    # low-frequency blotches (glue thickness, printing) computed at 1/4 resolution, then upscaled
    qh, qw = max(8, height // 4), max(8, width // 4)
    blotch = _smooth_field(rng, (qh, qw), ((3, 0.6), (9, 0.35), (30, 0.2), (90, 0.1)))
    hue = _smooth_field(rng, (qh, qw), ((4, 1.0), (16, 0.5)))
    smudges = np.zeros((qh, qw), np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        c = (int(rng.uniform(0, qw)), int(rng.uniform(0, qh)))
        axes = (int(rng.uniform(5, 40) * qw / 648) + 1, int(rng.uniform(5, 25) * qw / 648) + 1)
        cv2.ellipse(smudges, c, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(40, 120)), -1)
    smudge = cv2.GaussianBlur(smudges, (0, 0), max(1.0, 4 * qw / 648)).astype(np.float32) / 255.0
    factor = 1.0 + 0.05 * blotch - 0.25 * smudge
    factor = cv2.resize(factor, (width, height), interpolation=cv2.INTER_LINEAR)
    hue = cv2.resize(hue, (width, height), interpolation=cv2.INTER_LINEAR)
    grain = rng.standard_normal((height, width), dtype=np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * 3.5
    img = np.empty((height, width, 3), np.float32)
    hue_dir = np.array([-4.0, 2.5, 7.0], np.float32)  # greenish-yellow <-> orange-yellow
    for ch in range(3):
        img[..., ch] = tint[ch] * factor + hue_dir[ch] * hue + grain
    card = np.clip(img, 0, 255).astype(np.uint8)
    del img, factor, hue, grain

    _grid(card, rng, s)
    _dirt(card, rng, s)
    if rng.random() < 0.6:
        _marker(card, rng, s, device)
    return card


def _blend(card: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float], opacity: float) -> None:
    """Blend ``colour`` into ``card`` where ``mask`` (uint8) is set, limited to the mask's bounding box."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return
    a = mask[y : y + h, x : x + w].astype(np.float32) * (opacity / 255.0)
    region = card[y : y + h, x : x + w].astype(np.float32)
    region = region * (1 - a[..., None]) + np.asarray(colour, np.float32) * a[..., None]
    card[y : y + h, x : x + w] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def _grid(card: np.ndarray, rng: np.random.Generator, s: float) -> None:
    """Printed grid of 1-inch squares, slightly rotated relative to the camera."""
    h, w = card.shape[:2]
    step = 25.4 * 14.0 * s
    angle = math.radians(rng.normal(0, 1.0))
    off = rng.uniform(0, step, 2)
    mask = np.zeros((h, w), np.uint8)
    thick = max(1, int(round(2.5 * s)))
    ca, sa = math.cos(angle), math.sin(angle)
    diag = math.hypot(w, h)
    n = int(diag / step) + 2
    cx, cy = w / 2, h / 2
    for k in range(-n, n + 1):
        d = k * step
        for horizontal in (False, True):
            # line at signed distance d from the centre, direction rotated by angle
            ux, uy = (ca, sa) if horizontal else (-sa, ca)
            nx, ny = -uy, ux
            ox = cx + nx * (d + off[0 if horizontal else 1] - step / 2)
            oy = cy + ny * (d + off[0 if horizontal else 1] - step / 2)
            p1 = (int(round((ox - ux * diag) * 16)), int(round((oy - uy * diag) * 16)))
            p2 = (int(round((ox + ux * diag) * 16)), int(round((oy + uy * diag) * 16)))
            cv2.line(mask, p1, p2, 255, thick, cv2.LINE_AA, 4)
    _blend(card, mask, (40.0, 95.0, 90.0), float(rng.uniform(0.35, 0.55)))


def _dirt(card: np.ndarray, rng: np.random.Generator, s: float) -> None:
    """Dust specks, plant fibres and hairs: realistic non-insect clutter for the detector to ignore."""
    h, w = card.shape[:2]
    area_scale = (w * h) / (2592 * 1944)
    for opacity in (0.35, 0.6, 0.85):
        mask = np.zeros((h, w), np.uint8)
        n = int(rng.poisson(250 * area_scale)) + 1
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        radii = np.maximum(0.6, rng.gamma(1.2, 0.9, n) * s * 1.2)
        elong = rng.uniform(0.5, 1.0, n)
        angles = rng.uniform(0, 180, n)
        for x, y, r, e, a in zip(xs, ys, radii, elong, angles, strict=True):
            axes = (max(8, int(r * 16)), max(8, int(r * e * 16)))
            cv2.ellipse(mask, (int(x * 16), int(y * 16)), axes, float(a), 0, 360, 255, -1, cv2.LINE_AA, 4)
        colour = tuple(float(c) for c in rng.uniform(20, 70, 3) * np.array([0.8, 1.0, 1.1]))
        _blend(card, mask, colour, opacity)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.poisson(12 * max(area_scale, 0.1)))):
        p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        heading = rng.uniform(0, 2 * math.pi)
        pts = [p.copy()]
        for _ in range(int(rng.integers(3, 10))):
            heading += rng.normal(0, 0.3)
            p = p + rng.uniform(8, 30) * s * np.array([math.cos(heading), math.sin(heading)])
            pts.append(p.copy())
        arr = np.round(np.array(pts) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [arr], False, 255, max(1, int(round(1.5 * s))), cv2.LINE_AA, 4)
    _blend(card, mask, (45.0, 75.0, 95.0), 0.7)


def _marker(card: np.ndarray, rng: np.random.Generator, s: float, device: str) -> None:
    """Hand-written device id in marker pen, as field staff label their cards."""
    h, w = card.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    scale = float(rng.uniform(4.0, 6.0) * s)
    thick = max(1, int(round(rng.uniform(10, 16) * s)))
    (tw, th), _ = cv2.getTextSize(device[:4].upper(), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, scale, thick)
    x = int(rng.uniform(0.05 * w, max(0.06 * w, w - tw - 0.05 * w)))
    y = int(rng.uniform(th + 0.05 * h, max(th + 0.06 * h, 0.95 * h)))
    cv2.putText(mask, device[:4].upper(), (x, y), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    _blend(card, mask, (30.0, 40.0, 38.0), 0.85)


# -- lighting ------------------------------------------------------------------------------------------------


def local_hour(config: SynthConfig, when: datetime) -> float:
    t = when.hour + when.minute / 60 + when.second / 3600 + config.utc_offset_h
    return t % 24.0


def daylight(config: SynthConfig, when: datetime) -> float:
    """0 at night, 1 in full daylight, linear over an hour of twilight around sunrise and sunset."""
    h = local_hour(config, when)
    sunrise, sunset = 12 - config.day_length_h / 2, 12 + config.day_length_h / 2
    return float(np.clip(min(h - sunrise, sunset - h) + 0.5, 0.0, 1.0))


@dataclass
class CardLight:
    """Per-card lighting constants: vegetation shadow pattern (coarse, with room to drift) and cloud phases."""

    shadow: np.ndarray | None  # float32 coarse map in [0, 1], 1.5x the coarse frame size
    cloud_phases: np.ndarray
    cloud_periods_h: np.ndarray
    shadow_angle: float


def card_light(config: SynthConfig, rng: np.random.Generator, with_shadows: bool = True) -> CardLight:
    gw, gh = _grid_size(config)
    shadow = None
    if with_shadows and rng.random() < 0.7:
        big = np.zeros((int(gh * 1.5), int(gw * 1.5)), np.uint8)
        angle = rng.uniform(-70, -20) if rng.random() < 0.5 else rng.uniform(20, 70)
        d = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        for _ in range(int(rng.integers(3, 12))):
            c = np.array([rng.uniform(0, big.shape[1]), rng.uniform(0, big.shape[0])])
            half = rng.uniform(0.3, 1.0) * big.shape[1]
            a = c - d * half
            b = c + d * half + rng.normal(0, 5, 2)
            thick = int(rng.uniform(1, 5) * gw / 324) + 1
            cv2.line(big, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 255, thick, cv2.LINE_AA)
        for _ in range(int(rng.integers(0, 4))):
            c = (int(rng.uniform(0, big.shape[1])), int(rng.uniform(0, big.shape[0])))
            axes = (int(rng.uniform(6, 20) * gw / 324) + 1, int(rng.uniform(3, 10) * gw / 324) + 1)
            cv2.ellipse(big, c, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
        shadow = cv2.GaussianBlur(big.astype(np.float32) / 255.0, (0, 0), 1.2 * gw / 324 + 0.5)
        shadow = np.clip(shadow * 1.6, 0, 1)
    else:
        angle = 0.0
    return CardLight(
        shadow=shadow,
        cloud_phases=rng.uniform(0, 2 * math.pi, 3),
        cloud_periods_h=rng.uniform(0.7, 5.0, 3),
        shadow_angle=float(angle),
    )


def _grid_size(config: SynthConfig) -> tuple[int, int]:
    return max(4, config.width // LIGHT_GRID), max(4, config.height // LIGHT_GRID)


_RADIAL_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _radial(config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Vignette (ambient) and flash hotspot on the coarse grid; cached per frame size."""
    key = (config.width, config.height)
    if key not in _RADIAL_CACHE:
        gw, gh = _grid_size(config)
        yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
        r2 = ((xx - gw / 2) / (gw / 2)) ** 2 + ((yy - gh / 2) / (gw / 2)) ** 2  # unit = half width
        vignette = 1.0 - 0.12 * r2
        hotspot = 0.5 + 0.75 * np.exp(-r2 / 0.9)
        _RADIAL_CACHE[key] = (vignette.astype(np.float32), hotspot.astype(np.float32))
    return _RADIAL_CACHE[key]


def clouds(light: CardLight, when: datetime) -> float:
    """Slowly varying sunshine in [0.45, 1] (a deterministic function of time, continuous across days)."""
    hours = when.timestamp() / 3600.0
    v = np.sin(2 * np.pi * hours / light.cloud_periods_h + light.cloud_phases).mean()
    return float(0.72 + 0.28 * v)


def lighting_kind(config: SynthConfig, when: datetime, flash_failed: bool) -> str:
    d = daylight(config, when)
    if d >= 0.5:
        return "day"
    if d > 0.0:
        return "twilight"
    return "night_dark" if flash_failed else "night_flash"


def frame_gain(config: SynthConfig, light: CardLight, when: datetime, kind: str) -> np.ndarray:
    """Coarse gain map (uint8 BGR, units of 1/128) for one frame; upscale and multiply to apply."""
    gw, gh = _grid_size(config)
    vignette, hotspot = _radial(config)
    sun = daylight(config, when) * clouds(light, when)
    ambient = sun * vignette
    if light.shadow is not None and sun > 0.05:
        # the pattern drifts with the sun (about a third of the frame over the day)
        hour = local_hour(config, when)
        sh, sw = light.shadow.shape
        shift = (hour - 12.0) / 12.0 * 0.25 * gw
        dx = (sw - gw) / 2 + shift * math.cos(math.radians(light.shadow_angle + 90))
        dy = (sh - gh) / 2 + shift * math.sin(math.radians(light.shadow_angle + 90))
        m = np.float32([[1, 0, -dx], [0, 1, -dy]])
        shadow = cv2.warpAffine(light.shadow, m, (gw, gh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        strength = 0.55 * float(np.clip((clouds(light, when) - 0.5) * 2.2, 0, 1))
        ambient = ambient * (1.0 - strength * shadow)
    flash = 0.0 if kind == "night_dark" else FLASH_POWER
    exposure = float(np.clip(1.0 / (0.95 * sun + 0.85 * flash + 1e-6), 0.55, 2.2))
    gain = np.empty((gh, gw, 3), np.float32)
    for ch in range(3):
        gain[..., ch] = exposure * (ambient * DAY_WB[ch] + flash * hotspot * FLASH_WB[ch])
    if kind == "night_dark":
        gain = np.maximum(gain, 0.06)
    return np.clip(gain * GAIN_UNIT + 0.5, 0, 255).astype(np.uint8)


def apply_gain(frame: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply a uint8 BGR frame by an upscaled coarse gain map (saturating)."""
    h, w = frame.shape[:2]
    full = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(frame, full, scale=1.0 / GAIN_UNIT, dtype=cv2.CV_8U)


class SensorNoise:
    """Temporal sensor noise: one random field per device-day, viewed at a random offset per frame.

    Drawing 15 M normal numbers per frame would cost more than the rest of the frame; offsetting a
    pre-drawn field gives different noise in every frame for the cost of two saturating adds.
    """

    PAD = 64

    def __init__(self, rng: np.random.Generator, width: int, height: int, sigma: float = 3.2) -> None:
        h, w = height + self.PAD, width + self.PAD
        field = rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
        self.pos = np.clip(field, 0, 255).astype(np.uint8)
        self.neg = np.clip(-field, 0, 255).astype(np.uint8)
        self.width, self.height = width, height

    def offsets(self, rng: np.random.Generator, strength: int = 3) -> np.ndarray:
        """Random view offsets for one frame (drawn up front so they do not depend on anything else)."""
        return rng.integers(0, self.PAD, (strength, 4))

    def apply(self, frame: np.ndarray, offsets: np.ndarray, strength: int = 1) -> np.ndarray:
        """Add noise ``strength`` times (1 for normal frames, more for under-exposed ones)."""
        out = frame
        for ox, oy, px, py in offsets[:strength].tolist():
            out = cv2.add(out, self.pos[oy : oy + self.height, ox : ox + self.width])
            out = cv2.subtract(out, self.neg[py : py + self.height, px : px + self.width])
        return out
