"""What a synthetic time-lapse looks like, and where every random number comes from.

Every random stream is a :class:`numpy.random.Generator` built from ``SeedSequence(seed, spawn_key=key)``
where ``key`` names the purpose and the device/day/card it belongs to. Nothing depends on generation order,
so one device-day can be generated alone (a test, a Dagster partition, a resumed run) and gives exactly the
bytes it would have had inside a full run; and adding devices or days never changes the existing ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from stickypi_assets.formats.names import EARLIEST_VALID, validate_device
from stickypi_assets.synth.taxa import DEFAULT_TAXA, TAXA

#: Resolution of the Sticky Pi camera; sizes in mm/px below are defined at this width.
REFERENCE_WIDTH = 2592
#: Card pixels per mm at the reference resolution (a ~18 cm wide field of view).
PX_PER_MM = 14.0

# Purposes of the random streams (first element of every spawn key).
KEY_DEVICE_ID = 1
KEY_SCHEDULE = 2
KEY_ARRIVALS = 3
KEY_FRAMES = 4
KEY_CARD = 5
KEY_CORRUPT = 6


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of a synthetic deployment: ``devices`` cameras photographing yellow sticky cards.

    Deployment: ``devices`` is a count (ids derived from the seed, stable when the count grows) or explicit
    8-hex-digit ids; ``days`` UTC days from ``start_date`` (not before 2019-11-01, the platform's epoch);
    cards are replaced every ``card_days`` days at 00:00 UTC (insects start again from zero), as field
    devices had their card changed weekly. Local solar time is UTC + ``utc_offset_h`` (the original
    deployments were in British Columbia) with ``day_length_h`` hours of daylight.

    Frames: one every ``interval_s`` s (+ normal jitter of ``interval_jitter_s`` s), each skipped with
    probability ``missing_frame_prob``; ``corrupt_frames`` is an exact count of corrupt JPEGs over the whole
    run when ``>= 1`` and a per-frame probability when in ``(0, 1)``; ``dark_frame_prob`` of night frames
    have no flash; camera shake is a normal translation of ``shake_px`` reference pixels per frame (4x in
    gusts). Sizes and distances are given at the camera's 2592 px width and follow ``width``.

    Insects: ``arrival_rate_day``/``arrival_rate_night`` insects per hour land on the whole card in full
    daylight/at night, shared among ``taxa`` by abundance and day/night preference; each insect escapes
    with ``escape_prob`` or decays with ``decay_prob``; ``occlusion_prob`` is the chance per insect and frame
    that a glare starts hiding it for 1-3 frames. ``sprites_dir``: a folder of UID SVGs whose annotated
    insects become the sprites (and whose images, insects removed, the card backgrounds) instead of the
    procedural taxa (``taxa`` is then ignored; the taxon is ``Insecta....``).
    """

    devices: int | tuple[str, ...] = 1
    days: int = 1
    start_date: date = date(2020, 6, 20)
    seed: int = 0
    width: int = 2592
    height: int = 1944
    interval_s: float = 1200.0
    interval_jitter_s: float = 15.0
    missing_frame_prob: float = 0.02
    arrival_rate_day: float = 3.0
    arrival_rate_night: float = 0.6
    taxa: tuple[str, ...] = field(default_factory=lambda: DEFAULT_TAXA)
    corrupt_frames: float = 0
    jpeg_quality: int = 95
    sprites_dir: str | Path | None = None
    card_days: int = 7
    escape_prob: float = 0.08
    decay_prob: float = 0.2
    occlusion_prob: float = 0.001
    dark_frame_prob: float = 0.04
    shake_px: float = 1.5
    utc_offset_h: float = -8.0
    day_length_h: float = 16.0

    def __post_init__(self) -> None:
        if isinstance(self.devices, Sequence) and not isinstance(self.devices, str):
            object.__setattr__(self, "devices", tuple(validate_device(d).lower() for d in self.devices))
            if len(set(self.devices)) != len(self.devices) or not self.devices:
                raise ValueError(f"devices must be distinct and non-empty, got {self.devices}")
        elif not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(f"devices must be a positive count or a list of device ids, got {self.devices!r}")
        if isinstance(self.start_date, datetime):
            object.__setattr__(self, "start_date", self.start_date.date())
        elif isinstance(self.start_date, str):
            object.__setattr__(self, "start_date", date.fromisoformat(self.start_date))
        object.__setattr__(self, "taxa", tuple(self.taxa))
        if self.start_date < EARLIEST_VALID.date():
            raise ValueError(
                f"SynthConfig: start_date {self.start_date} is before {EARLIEST_VALID.date()}, the Sticky Pi "
                "epoch; such image names are rejected as clock errors"
            )
        checks = [
            (self.days >= 1, "days must be >= 1"),
            (self.width >= 64 and self.height >= 64, "width and height must be >= 64 px"),
            (self.interval_s >= 60, "interval_s must be >= 60 s"),
            (0 <= self.interval_jitter_s <= self.interval_s / 8, "interval_jitter_s must be in [0, interval/8]"),
            (0 <= self.missing_frame_prob < 1, "missing_frame_prob must be in [0, 1)"),
            (self.arrival_rate_day >= 0 and self.arrival_rate_night >= 0, "arrival rates must be >= 0"),
            (self.corrupt_frames >= 0, "corrupt_frames must be >= 0"),
            (
                self.corrupt_frames < 1 or float(self.corrupt_frames).is_integer(),
                "corrupt_frames is a count (integer >= 1) or a probability in [0, 1)",
            ),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
            (self.card_days >= 1, "card_days must be >= 1"),
            (0 < self.day_length_h < 24, "day_length_h must be in (0, 24)"),
            (len(self.taxa) > 0, "taxa must not be empty"),
            (
                min(self.escape_prob, self.decay_prob) >= 0 and self.escape_prob + self.decay_prob <= 1,
                "escape_prob and decay_prob must be >= 0 and sum to <= 1",
            ),
            (0 <= self.occlusion_prob <= 1 and 0 <= self.dark_frame_prob <= 1, "probabilities must be in [0, 1]"),
            (self.shake_px >= 0, "shake_px must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SynthConfig: {message}")
        unknown = [t for t in self.taxa if t not in TAXA]
        if unknown:
            raise ValueError(f"SynthConfig: unknown taxa {unknown}; choose from {sorted(TAXA)}")

    # -- derived values ----------------------------------------------------------------------------------

    @property
    def device_ids(self) -> tuple[str, ...]:
        """Device ids: given, or 8 hex digits drawn from the seed (stable when ``devices`` grows)."""
        if isinstance(self.devices, tuple):
            return self.devices
        ids: list[str] = []
        for i in range(self.devices):
            value = int(np.random.SeedSequence(self.seed, spawn_key=(KEY_DEVICE_ID, i)).generate_state(1)[0])
            candidate = f"{value:08x}"
            while candidate in ids:  # astronomically rare, but ids must be unique
                value = (value * 2654435761 + 1) % 2**32
                candidate = f"{value:08x}"
            ids.append(candidate)
        return tuple(ids)

    @property
    def n_devices(self) -> int:
        return len(self.device_ids)

    @property
    def scale(self) -> float:
        """Output pixels per reference (2592-wide) pixel: sizes, drift and shake follow the resolution."""
        return self.width / REFERENCE_WIDTH

    @property
    def px_per_mm(self) -> float:
        return PX_PER_MM * self.scale

    @property
    def real_sprites(self) -> bool:
        return self.sprites_dir is not None

    def day_date(self, day_index: int) -> date:
        return self.start_date + timedelta(days=day_index)

    def day_start(self, day_index: int) -> datetime:
        """00:00 UTC of the day (aware)."""
        d = self.day_date(day_index)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    def card_index(self, day_index: int) -> int:
        return day_index // self.card_days

    def card_days_range(self, card_index: int) -> range:
        """Day indices of a card (the last card may extend past ``days``; only generated days matter)."""
        return range(card_index * self.card_days, (card_index + 1) * self.card_days)

    def rng(self, *key: int) -> np.random.Generator:
        """Independent generator for a purpose/device/day key (see module docstring)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=tuple(int(k) for k in key)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (for the manifest)."""
        d = asdict(self)
        d["devices"] = list(self.device_ids)
        d["start_date"] = self.start_date.isoformat()
        d["taxa"] = list(self.taxa)
        d["sprites_dir"] = None if self.sprites_dir is None else str(self.sprites_dir)
        return d
