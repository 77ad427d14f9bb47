"""When frames are taken, when insects land, how they move, and what becomes of them.

Everything here is parameters, never pixels, so it is cheap to recompute: generating day *d* of a card
re-samples the arrivals of the card's earlier days (a few hundred numbers) instead of reading state from a
previous run. That is what lets any device-day be generated on its own with identical results.

**Schedule.** Each device has a fixed phase; slot *k* is at ``run start + phase + k * interval`` plus a
per-slot jitter (seconds are truncated, as in file names). A slot is ``missing`` (no file: the camera
skipped it) with probability ``missing_frame_prob``, and some written slots are ``corrupt``.

**Insects.** Landings follow a Poisson process whose rate moves between ``arrival_rate_night`` and
``arrival_rate_day`` with daylight; each taxon's share follows its own day/night preference. A landing
insect gets a position (avoiding insects already on the card), an orientation, a struggle period (during
which it jitters, drifts slowly and turns a little; afterwards it is still) and a fate:

* ``stays`` (most),
* ``escapes``: disappears at ``fate_time`` (always after struggling until then),
* ``decays``: from ``fate_time`` its colours darken and its wings fade over ``decay_s`` seconds.

**Ids.** ``card_id = <device>.<card start>.<card end>.synth`` mirrors a SIM series id (reference 4.8,
``synth`` in place of the model version) and ``insect_id = <card_id>.<NNNN>`` (arrival order on the card)
mirrors a tuboid id, so the ITC ground truth keys insects exactly like tuboids. Insects that land and escape
between two frames are never seen: they keep their number (so ids are stable) but appear in no output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from stickypi_assets.formats.names import format_datetime
from stickypi_assets.synth.card import daylight
from stickypi_assets.synth.config import KEY_ARRIVALS, KEY_CORRUPT, KEY_SCHEDULE, SynthConfig
from stickypi_assets.synth.taxa import REAL_KEY, REAL_TAXON, TAXA

CORRUPTION_KINDS = ("truncated", "garbled", "zeroed")
#: Occlusions only start on insects that have been on the card this long (so they were seen before).
OCCLUSION_MIN_AGE_S = 2 * 3600.0
#: Insects keep this far (reference pixels) from the card's edge, on top of their own radius.
EDGE_MARGIN = 24.0


@dataclass(frozen=True)
class FrameSlot:
    """One scheduled capture of one device."""

    device: str
    device_index: int
    day_index: int
    index: int  # slot number within the day
    datetime: datetime  # aware UTC, whole seconds
    status: str  # ok | missing | corrupt
    corruption: str | None = None

    @property
    def stem(self) -> str:
        return f"{self.device}.{format_datetime(self.datetime)}"


def device_phase(config: SynthConfig, device_index: int) -> float:
    """Seconds between midnight of the first day and the device's first slot (fixed per device)."""
    rng = config.rng(KEY_SCHEDULE, device_index)
    return float(rng.uniform(0.25, 0.75) * config.interval_s)


def corrupt_plan(config: SynthConfig) -> dict[tuple[int, int], list[float]]:
    """For a count of corrupt frames: which device-days get one, with a position in [0, 1) each."""
    plan: dict[tuple[int, int], list[float]] = {}
    if config.corrupt_frames < 1:
        return plan
    rng = config.rng(KEY_CORRUPT)
    for _ in range(int(config.corrupt_frames)):
        key = (int(rng.integers(config.n_devices)), int(rng.integers(config.days)))
        plan.setdefault(key, []).append(float(rng.random()))
    return plan


def day_slots(config: SynthConfig, device_index: int, day_index: int) -> list[FrameSlot]:
    """All slots of one device-day, in time order, with their status."""
    device = config.device_ids[device_index]
    start = config.day_start(day_index)
    t0 = config.day_start(0).timestamp() + device_phase(config, device_index)
    lo, hi = start.timestamp(), start.timestamp() + 86400.0
    k0 = math.ceil((lo - t0) / config.interval_s)
    rng = config.rng(KEY_SCHEDULE, device_index, day_index)
    base = [t0 + k * config.interval_s for k in range(k0, k0 + int(86400 // config.interval_s) + 2)]
    base = [t for t in base if lo <= t < hi]
    jitter = np.clip(
        rng.normal(0, config.interval_jitter_s, len(base)), -3 * config.interval_jitter_s, 3 * config.interval_jitter_s
    )
    missing = rng.random(len(base)) < config.missing_frame_prob
    kinds = rng.integers(len(CORRUPTION_KINDS), size=len(base))
    corrupt_p = rng.random(len(base))
    times = [int(min(max(t + j, lo), hi - 1)) for t, j in zip(base, jitter, strict=True)]
    ok_idx = [i for i in range(len(base)) if not missing[i]]
    corrupt: set[int] = set()
    if 0 < config.corrupt_frames < 1:
        corrupt = {i for i in ok_idx if corrupt_p[i] < config.corrupt_frames}
    else:
        for u in corrupt_plan(config).get((device_index, day_index), []):
            if len(corrupt) >= len(ok_idx):
                break
            j = int(u * len(ok_idx))
            while ok_idx[j] in corrupt:
                j = (j + 1) % len(ok_idx)
            corrupt.add(ok_idx[j])
    slots = []
    for i, t in enumerate(times):
        status = "missing" if missing[i] else ("corrupt" if i in corrupt else "ok")
        slots.append(
            FrameSlot(
                device=device,
                device_index=device_index,
                day_index=day_index,
                index=i,
                datetime=datetime.fromtimestamp(t, UTC),
                status=status,
                corruption=CORRUPTION_KINDS[int(kinds[i])] if status == "corrupt" else None,
            )
        )
    return slots


# -- insects ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InsectPlan:
    """Everything about one insect that does not change from frame to frame (positions in frame pixels)."""

    insect_id: str
    card_id: str
    device: str
    number: int
    taxon_key: str  # a key of TAXA, or 'real'
    taxon: str
    sprite_seed: int
    sprite_ref: int  # index into the real sprite pool, -1 for procedural sprites
    arrival: float  # unix seconds
    x: float
    y: float
    angle: float  # degrees, 0 = head up
    radius: float  # pixels: room the sprite needs in any orientation
    struggle_s: float
    drift: tuple[float, float]  # pixels per hour while struggling
    spin: float  # degrees per hour while struggling
    fate: str  # stays | escapes | decays
    fate_time: float | None
    decay_s: float
    removed: float  # unix seconds: the card is replaced

    def present(self, t: float) -> bool:
        if t < self.arrival or t >= self.removed:
            return False
        return not (self.fate == "escapes" and self.fate_time is not None and t >= self.fate_time)

    def decay_at(self, t: float) -> float:
        if self.fate != "decays" or self.fate_time is None or t <= self.fate_time:
            return 0.0
        return float(min(1.0, (t - self.fate_time) / self.decay_s))

    def struggling(self, t: float) -> bool:
        return t - self.arrival < self.struggle_s

    def pose(self, t: float, jitter: np.ndarray | None, scale: float) -> tuple[float, float, float]:
        """``(x, y, angle)`` at time ``t``; ``jitter`` = three standard normals (used while struggling)."""
        e = min(max(t - self.arrival, 0.0), self.struggle_s) / 3600.0
        x = self.x + self.drift[0] * e
        y = self.y + self.drift[1] * e
        angle = self.angle + self.spin * e
        if jitter is not None and self.struggling(t):
            x += 0.9 * scale * float(jitter[0])
            y += 0.9 * scale * float(jitter[1])
            angle += 4.0 * float(jitter[2])
        return x, y, angle


def card_id(config: SynthConfig, device: str, card_index: int) -> str:
    days = config.card_days_range(card_index)
    start = config.day_start(days.start)
    end = start + timedelta(days=config.card_days)
    return f"{device}.{format_datetime(start)}.{format_datetime(end)}.synth"


def _rate(config: SynthConfig, light: float) -> float:
    return config.arrival_rate_night + (config.arrival_rate_day - config.arrival_rate_night) * light


def _taxon_weights(config: SynthConfig, light: float) -> np.ndarray:
    w = np.array(
        [TAXA[k].abundance * (light * (1 - TAXA[k].nocturnal) + (1 - light) * TAXA[k].nocturnal) for k in config.taxa]
    )
    return w / w.sum() if w.sum() > 0 else np.full(len(config.taxa), 1 / len(config.taxa))


class CardPopulation:
    """Insects landing on one card of one device, sampled day by day (each day its own random stream).

    ``radius_of(taxon_key, sprite_ref, rng_seed)`` is supplied by the caller: the room a sprite needs,
    used to keep insects inside the frame and apart from each other.
    """

    def __init__(
        self,
        config: SynthConfig,
        device_index: int,
        card_index: int,
        real_radii: Sequence[float] | None = None,
    ) -> None:
        self.config = config
        self.device_index = device_index
        self.device = config.device_ids[device_index]
        self.card_index = card_index
        self.card_id = card_id(config, self.device, card_index)
        days = config.card_days_range(card_index)
        self.removed = config.day_start(days.start).timestamp() + 86400.0 * config.card_days
        self.real_radii = list(real_radii) if real_radii is not None else None
        self.insects: list[InsectPlan] = []
        self.sampled_until = days.start - 1

    def extend_to(self, day_index: int) -> list[InsectPlan]:
        """Sample arrivals of every day of the card up to ``day_index`` (inclusive) and return all insects."""
        while self.sampled_until < day_index:
            self.sampled_until += 1
            self._sample_day(self.sampled_until)
        return self.insects

    def _sample_day(self, day_index: int) -> None:
        config = self.config
        rng = config.rng(KEY_ARRIVALS, self.device_index, day_index)
        start = config.day_start(day_index).timestamp()
        # Poisson process with time-varying rate by thinning
        rate_max = max(config.arrival_rate_day, config.arrival_rate_night) / 3600.0
        n_candidates = int(rng.poisson(rate_max * 86400.0)) if rate_max > 0 else 0
        times = np.sort(rng.uniform(start, start + 86400.0, n_candidates))
        keep_u = rng.random(n_candidates)
        for t, u in zip(times, keep_u, strict=True):
            light = daylight(config, datetime.fromtimestamp(float(t), UTC))
            if u * rate_max * 3600.0 > _rate(config, light):
                continue
            self.insects.append(self._new_insect(rng, float(t), light))

    def _new_insect(self, rng: np.random.Generator, t: float, light: float) -> InsectPlan:
        config = self.config
        s = config.scale
        sprite_seed = int(rng.integers(2**62))
        if config.real_sprites:
            assert self.real_radii is not None, "real sprite radii are needed in sprite mode"
            ref = int(rng.integers(len(self.real_radii)))
            taxon_key, taxon, radius = REAL_KEY, REAL_TAXON, self.real_radii[ref]
        else:
            ref = -1
            taxon_key = config.taxa[int(rng.choice(len(config.taxa), p=_taxon_weights(config, light)))]
            spec = TAXA[taxon_key]
            taxon = spec.taxon
            radius = spec.length_mm[1] * spec.extent * config.px_per_mm * 0.62 + 3
        struggle = float(rng.exponential(1.5 * 3600)) if rng.random() < 0.7 else 0.0
        struggle = min(struggle, 6 * 3600.0)
        speed = rng.uniform(0.0, 4.0) * s
        heading = rng.uniform(0, 2 * math.pi)
        drift = (speed * math.cos(heading), speed * math.sin(heading))
        spin = float(rng.normal(0, 6.0))
        u = rng.random()
        fate, fate_time, decay_s = "stays", None, 0.0
        escape_delay = float(rng.exponential(3600.0)) + 300.0
        decay_delay = float(rng.uniform(3, 36)) * 3600.0
        decay_len = float(rng.uniform(12, 48)) * 3600.0
        if u < config.escape_prob:
            fate, fate_time = "escapes", t + escape_delay
            struggle = max(struggle, escape_delay)
        elif u < config.escape_prob + config.decay_prob:
            fate, fate_time, decay_s = "decays", t + decay_delay, decay_len
        drift_px = math.hypot(*drift) * struggle / 3600.0
        margin = radius + (EDGE_MARGIN + 4 * config.shake_px) * s + drift_px
        x_lo, x_hi = margin, config.width - margin
        y_lo, y_hi = margin, config.height - margin
        if x_hi <= x_lo:
            x_lo = x_hi = config.width / 2
        if y_hi <= y_lo:
            y_lo = y_hi = config.height / 2
        # keep apart from insects already on the card (a few tries; crowded cards do get overlaps)
        placed = np.array([(p.x, p.y, p.radius) for p in self.insects]) if self.insects else None
        xy = (0.0, 0.0)
        for _ in range(12):
            xy = (float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi)))
            if placed is None:
                break
            d = np.hypot(placed[:, 0] - xy[0], placed[:, 1] - xy[1])
            if np.all(d > 0.75 * (placed[:, 2] + radius)):
                break
        number = len(self.insects) + 1
        return InsectPlan(
            insect_id=f"{self.card_id}.{number:04d}",
            card_id=self.card_id,
            device=self.device,
            number=number,
            taxon_key=taxon_key,
            taxon=taxon,
            sprite_seed=sprite_seed,
            sprite_ref=ref,
            arrival=t,
            x=xy[0], y=xy[1],  # fmt: skip
            angle=float(rng.uniform(-180, 180)),
            radius=float(radius),
            struggle_s=struggle,
            drift=drift,
            spin=spin,
            fate=fate,
            fate_time=fate_time,
            decay_s=decay_s if decay_s > 0 else 1.0,
            removed=self.removed,
        )
