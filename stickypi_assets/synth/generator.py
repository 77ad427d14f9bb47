"""Orchestration: render device-days frame by frame and write images and ground truth to an object store.

Streaming: a device-day is a generator of frames; each frame is encoded and written (by one background
thread, so encoding overlaps the next frame's rendering) and then dropped. At most two full frames and the
cached card exist at any time, whatever the number of days. Ground-truth rows go to Parquet writers in a
temporary folder (one row group per device-day) and are uploaded at the end.

Objects written (``<stem>`` = ``<device>.<YYYY-MM-DD_HH-MM-SS>``):

``raw_images/<device>/<stem>.jpg``
    The frames, named like real Sticky Pi images, with EXIF (``Make`` holds the sensor dict with
    ``temp``/``hum`` as on the devices, ``Software`` says ``stickypi_assets.synth``). Corrupt frames are
    written here too (truncated, garbled or zeroed bytes), since that is what ingestion must cope with.
``ground_truth/uid/<device>/<stem>.svg``
    UID annotation SVG of every *readable* frame: the exact JPEG bytes of the raw image embedded (same
    md5) and one ``insect`` path per visible insect, ordered by insect number (``instance_index``).
    Occluded insects are absent from it. Corrupt and missing frames have no SVG.
``ground_truth/frames.parquet``
    One row per (insect, scheduled frame) while the insect is on the card, ``status`` one of
    ``visible`` (in the SVG), ``occluded`` (hidden by a glare in that image), ``missing_frame`` (the
    camera wrote no image), ``corrupt_frame`` (the image is unreadable), ``out_of_frame`` (clipped away).
    ``polygon`` is where the insect is (null for missing frames), also when it is not in the SVG.
``ground_truth/tracks.parquet``
    One row per insect seen at least once: ids, taxon, fate, landing time, ``capture_datetime`` (first
    frame where it is visible), last frame, counts per status and ``gaps`` (every non-visible frame
    between its first and last visible frame, with the reason).
``ground_truth/images.parquet``
    One row per scheduled frame: status ``ok`` / ``missing`` / ``corrupt`` (+ kind), lighting, camera
    shake, md5, number of instances.
``ground_truth/itc/database.db``
    The tuboid annotation tool's table (reference 5.5), one row per insect with ``tuboid_id`` = the
    insect id (``<device>.<card start>.<card end>.synth.<NNNN>``, shaped like a SIM tuboid id), user
    ``stickypi-synth``, the taxon levels, and ``datetime`` = the capture time (deterministic).
``ground_truth/manifest.json``
    Summary counts, the configuration, the list of corrupt images, and these conventions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.names import format_datetime
from stickypi_assets.storage.keys import ground_truth_key, ground_truth_uid_svg_key, raw_image_key
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.synth.card import (
    CardLight,
    SensorNoise,
    apply_gain,
    card_light,
    daylight,
    frame_gain,
    lighting_kind,
    local_hour,
    procedural_card,
)
from stickypi_assets.synth.config import KEY_CARD, KEY_CORRUPT, KEY_FRAMES, SynthConfig
from stickypi_assets.synth.insects import (
    RealPool,
    Sprite,
    load_real_pool,
    procedural_sprite,
    real_background,
    scale_sprite,
)
from stickypi_assets.synth.render import (
    PlacedSprite,
    PosedSprite,
    composite,
    draw_glare,
    glare_box,
    place_posed,
    pose_sprite,
)
from stickypi_assets.synth.tracks import OCCLUSION_MIN_AGE_S, CardPopulation, FrameSlot, InsectPlan, day_slots

log = logging.getLogger(__name__)

GENERATOR = "stickypi_assets.synth"
GENERATOR_VERSION = "1"
ITC_USER = "stickypi-synth"

# quantisation of poses (cache keys; rendering and ground truth use the quantised pose)
_SUBPIXEL = 4
_ANGLE_STEP = 0.5
_DECAY_STEPS = 32


# -- rendering -------------------------------------------------------------------------------------------------


@dataclass
class RenderedFrame:
    """One scheduled frame: the image (``None`` if the camera skipped it) and its ground truth."""

    slot: FrameSlot
    card_id: str
    image: np.ndarray | None
    lighting: str
    daylight: float
    shake: tuple[int, int]
    visible: list[tuple[InsectPlan, PlacedSprite]]  # SVG order
    rows: list[dict[str, Any]]  # frames-table rows (every insect on the card at that time)
    n_on_card: int = 0

    @property
    def instances(self) -> list[Instance]:
        """Ground-truth instances in SVG order (class ``insect``, stroke ``#0000ff``)."""
        return [Instance(polygon=p.polygon) for _, p in self.visible if p.polygon is not None]


@dataclass
class _CardState:
    index: int
    population: CardPopulation
    background: np.ndarray
    margin: int
    light: CardLight
    noise: SensorNoise
    sprites: dict[str, Sprite] = field(default_factory=dict)
    posed: dict[str, tuple[tuple, PosedSprite]] = field(default_factory=dict)


class DeviceRenderer:
    """Renders the days of one device; keeps the card (texture, sprites) between consecutive days.

    Any day can be asked for in any order: the result only depends on (config, device, day).
    """

    def __init__(self, config: SynthConfig, device_index: int, real_pool: RealPool | None = None) -> None:
        if config.real_sprites and real_pool is None:
            real_pool = load_real_pool(str(config.sprites_dir))
        self.config = config
        self.device_index = device_index
        self.device = config.device_ids[device_index]
        self.real_pool = real_pool
        self._real_factors: list[float] = []
        self._real_radii: list[float] | None = None
        if real_pool is not None:
            self._real_factors = [config.width / w for w in real_pool.native_width]
            self._real_radii = [s.radius * f + 2 for s, f in zip(real_pool.sprites, self._real_factors, strict=True)]
        self._card: _CardState | None = None

    # -- card ------------------------------------------------------------------------------------------------

    def _card_for(self, day_index: int) -> _CardState:
        config = self.config
        index = config.card_index(day_index)
        if self._card is not None and self._card.index == index:
            return self._card
        self._card = None  # free the previous card first
        rng = config.rng(KEY_CARD, self.device_index, index)
        margin = int(math.ceil(6 * config.shake_px * config.scale)) + 2
        w, h = config.width + 2 * margin, config.height + 2 * margin
        if self.real_pool is not None:
            source = self.real_pool.sources[int(rng.integers(len(self.real_pool.sources)))]
            background = real_background(source, w, h)
        else:
            background = procedural_card(config, rng, w, h, self.device)
        light = card_light(config, rng, with_shadows=self.real_pool is None)
        noise = SensorNoise(config.rng(KEY_CARD, self.device_index, index, 1), config.width, config.height)
        population = CardPopulation(config, self.device_index, index, self._real_radii)
        self._card = _CardState(index, population, background, margin, light, noise)
        return self._card

    def insects(self, day_index: int) -> list[InsectPlan]:
        """Every insect that landed on the day's card up to the end of that day (arrival order)."""
        return list(self._card_for(day_index).population.extend_to(day_index))

    def _sprite(self, card: _CardState, insect: InsectPlan) -> Sprite:
        sprite = card.sprites.get(insect.insect_id)
        if sprite is None:
            if insect.sprite_ref >= 0:
                assert self.real_pool is not None
                ref = insect.sprite_ref
                sprite = scale_sprite(self.real_pool.sprites[ref], self._real_factors[ref])
            else:
                sprite = procedural_sprite(insect.taxon_key, insect.sprite_seed, self.config.px_per_mm)
            card.sprites[insect.insect_id] = sprite
        return sprite

    def _place(self, card: _CardState, insect: InsectPlan, x: float, y: float, angle: float, decay: float):
        xi, yi = math.floor(x), math.floor(y)
        fx = round((x - xi) * _SUBPIXEL) / _SUBPIXEL
        fy = round((y - yi) * _SUBPIXEL) / _SUBPIXEL
        if fx >= 1:
            xi, fx = xi + 1, 0.0
        if fy >= 1:
            yi, fy = yi + 1, 0.0
        key = (fx, fy, round(angle / _ANGLE_STEP) * _ANGLE_STEP, round(decay * _DECAY_STEPS) / _DECAY_STEPS)
        cached = card.posed.get(insect.insect_id)
        if cached is None or cached[0] != key:
            posed = pose_sprite(self._sprite(card, insect), key[0], key[1], key[2], key[3])
            card.posed[insect.insect_id] = (key, posed)
        else:
            posed = cached[1]
        return place_posed(posed, xi, yi, self.config.width, self.config.height), key

    # -- frames ----------------------------------------------------------------------------------------------

    def frames(self, day_index: int) -> Iterator[RenderedFrame]:
        """Render the day's scheduled frames in time order (missing frames come with ``image=None``)."""
        config = self.config
        card = self._card_for(day_index)
        day_lo = config.day_start(day_index).timestamp()
        day_hi = day_lo + 86400.0
        insects = [
            p
            for p in card.population.extend_to(day_index)
            if p.arrival < day_hi and p.removed > day_lo and (p.fate != "escapes" or (p.fate_time or 0) > day_lo)
        ]
        today = {i.insect_id for i in insects}
        for gone in [k for k in card.sprites if k not in today]:  # forget insects that left the card
            card.posed.pop(gone, None)
            card.sprites.pop(gone, None)
        occluded_left = np.zeros(len(insects), np.int64)  # occlusions run over consecutive frames
        for slot in day_slots(config, self.device_index, day_index):
            yield self._frame(card, slot, insects, occluded_left)

    def _frame(
        self, card: _CardState, slot: FrameSlot, insects: list[InsectPlan], occluded_left: np.ndarray
    ) -> RenderedFrame:
        config = self.config
        s = config.scale
        # Every random number of the frame is drawn up front, in a fixed order, from the frame's own stream;
        # the ones that do not depend on the insects come first, so an empty card has the same shake,
        # lighting and noise (the tests compare frames with and without insects pixel by pixel).
        frng = config.rng(KEY_FRAMES, self.device_index, slot.day_index, slot.index + 1)
        sd = config.shake_px * s * (4.0 if frng.random() < 0.05 else 1.0)
        lim = card.margin - 1
        dx, dy = (int(np.clip(round(v), -lim, lim)) for v in frng.normal(0, sd, 2))
        kind = lighting_kind(config, slot.datetime, bool(frng.random() < config.dark_frame_prob))
        noise_offsets = card.noise.offsets(frng)
        jitter = frng.standard_normal((len(insects), 3))
        occl_u = frng.random((len(insects), 2))

        t = slot.datetime.timestamp()
        render = slot.status != "missing"
        present: list[_Present] = []
        for i, insect in enumerate(insects):
            if not insect.present(t):
                occluded_left[i] = 0
                continue
            if occluded_left[i] > 0:
                occluded_left[i] -= 1
                hidden = True
            elif occl_u[i, 0] < config.occlusion_prob and t - insect.arrival > OCCLUSION_MIN_AGE_S:
                occluded_left[i] = int(occl_u[i, 1] * 3)  # hidden for 1 to 3 frames
                hidden = True
            else:
                hidden = False
            x, y, angle = insect.pose(t, jitter[i], s)
            x, y = x + dx, y + dy
            decay = insect.decay_at(t)
            placed, key = self._place(card, insect, x, y, angle, decay) if render else (None, None)
            present.append(_Present(i, insect, placed, x, y, angle, decay, hidden, key))
        if render:
            self._cancel_clashing_occlusions(present, occluded_left)

        image = None
        if render:
            m = card.margin
            canvas = card.background[m - dy : m - dy + config.height, m - dx : m - dx + config.width].copy()
            for p in present:
                if p.placed is not None:
                    composite(canvas, p.placed)
            for p in present:
                if p.hidden and p.placed is not None:
                    draw_glare(canvas, p.placed.bbox, s)
            canvas = apply_gain(canvas, frame_gain(config, card.light, slot.datetime, kind))
            image = card.noise.apply(canvas, noise_offsets, strength=3 if kind == "night_dark" else 1)

        visible: list[tuple[InsectPlan, PlacedSprite]] = []
        rows: list[dict[str, Any]] = []
        for p in present:
            row = _frame_row(p, slot, card.population.card_id, (dx, dy), t)
            if row["status"] == "visible":
                row["instance_index"] = len(visible)
                visible.append((p.insect, p.placed))  # type: ignore[arg-type]
            rows.append(row)
        return RenderedFrame(
            slot=slot,
            card_id=card.population.card_id,
            image=image,
            lighting=kind,
            daylight=daylight(config, slot.datetime),
            shake=(dx, dy),
            visible=visible,
            rows=rows,
            n_on_card=len(present),
        )

    def _cancel_clashing_occlusions(self, present: list[_Present], occluded_left: np.ndarray) -> None:
        """Keep an occlusion only if its glare hides nobody else: each hidden insect is then simply absent."""
        boxes = {p.index: p.placed.bbox for p in present if p.placed is not None and p.placed.polygon is not None}
        kept: set[int] = set()
        for p in present:
            if not p.hidden:
                continue
            if p.placed is None or p.placed.polygon is None:
                p.hidden = False
                continue
            gx, gy, gw, gh = glare_box(p.placed.bbox, self.config.scale)
            clash = any(
                j != p.index and j not in kept and bx < gx + gw and gx < bx + bw and by < gy + gh and gy < by + bh
                for j, (bx, by, bw, bh) in boxes.items()
            )
            if clash:
                p.hidden = False
                occluded_left[p.index] = 0
            else:
                kept.add(p.index)


@dataclass
class _Present:
    """An insect on the card at one frame."""

    index: int  # position in the day's insect list
    insect: InsectPlan
    placed: PlacedSprite | None  # None for missing frames (nothing rendered) or when out of the frame
    x: float  # centre in frame pixels, camera shake included
    y: float
    angle: float
    decay: float
    hidden: bool
    key: tuple | None  # quantised pose actually rendered


def _frame_row(p: _Present, slot: FrameSlot, card_id: str, shake: tuple[int, int], t: float) -> dict[str, Any]:
    """The frames-table row of one insect at one scheduled frame (see the module docstring)."""
    if slot.status == "missing":
        status = "missing_frame"
    elif p.placed is None or p.placed.polygon is None:
        status = "out_of_frame"
    elif slot.status == "corrupt":
        status = "corrupt_frame"
    elif p.hidden:
        status = "occluded"
    else:
        status = "visible"
    polygon = p.placed.polygon if p.placed is not None else None
    row: dict[str, Any] = {
        "insect_id": p.insect.insect_id,
        "card_id": card_id,
        "device": p.insect.device,
        "datetime": slot.datetime,
        "image_stem": None if slot.status == "missing" else slot.stem,
        "status": status,
        "instance_index": None,
        "polygon": None if polygon is None else polygon.tolist(),
        "centroid_x": None,
        "centroid_y": None,
        "bbox_x": None,
        "bbox_y": None,
        "bbox_w": None,
        "bbox_h": None,
        "area": None,
        "x": float(p.x),
        "y": float(p.y),
        "angle": float(p.key[2]) if p.key is not None else round(p.angle / _ANGLE_STEP) * _ANGLE_STEP,
        "decay": float(p.key[3]) if p.key is not None else round(p.decay * _DECAY_STEPS) / _DECAY_STEPS,
        "struggling": p.insect.struggling(t),
        "shake_dx": shake[0],
        "shake_dy": shake[1],
    }
    if polygon is not None:
        mom = cv2.moments(polygon)
        bx, by, bw, bh = cv2.boundingRect(polygon)
        if mom["m00"] > 0:
            row["centroid_x"], row["centroid_y"] = mom["m10"] / mom["m00"], mom["m01"] / mom["m00"]
        else:
            row["centroid_x"], row["centroid_y"] = (float(v) for v in polygon.mean(axis=0))
        row.update(bbox_x=int(bx), bbox_y=int(by), bbox_w=int(bw), bbox_h=int(bh), area=float(mom["m00"]))
    return row


# -- encoding ---------------------------------------------------------------------------------------------------


def sensors(config: SynthConfig, when: datetime, device_index: int) -> dict[str, Any]:
    """The device's sensor dict (EXIF ``Make``), with a plausible daily temperature/humidity cycle."""
    hour = local_hour(config, when)
    day = (when.date() - config.start_date).days
    temp = 17.0 + 7.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0) + 2.0 * math.sin(day * 1.3 + device_index)
    hum = float(np.clip(96.0 - 3.2 * (temp - 10.0), 25.0, 100.0))
    sync = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return {
        "lng": 0.0,
        "lat": 0.0,
        "alt": 0.0,
        "datetime": sync.strftime("%Y-%m-%d %H:%M:%S"),
        "no_flash_exposure_time": (124990, 1000000),
        "no_flash_iso": 400,
        "temp": round(temp, 1),
        "hum": round(hum, 1),
    }


def exif_segment(config: SynthConfig, when: datetime, device_index: int) -> bytes:
    """A JPEG APP1 segment with Sticky Pi-like EXIF (Make = sensor dict, Model, DateTime, Software)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = str(sensors(config, when, device_index))
    exif[0x0110] = "RP_ov5647"
    exif[0x0131] = f"{GENERATOR} {GENERATOR_VERSION}"
    exif[0x0132] = (when + timedelta(seconds=8)).strftime("%Y:%m:%d %H:%M:%S")  # EXIF lags the trigger
    payload = exif.tobytes()
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def encode_jpeg(image: np.ndarray, quality: int, app1: bytes = b"") -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
        raise RuntimeError("JPEG encoding failed")
    data = buf.tobytes()
    return data[:2] + app1 + data[2:] if app1 else data


def corrupt_bytes(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """Damage a JPEG the ways uploads and SD cards do; the result never decodes."""
    if kind == "truncated":  # interrupted upload
        return data[: int(len(data) * rng.uniform(0.1, 0.9))]
    if kind == "garbled":  # corrupted sectors, including the header
        out = bytearray(data)
        n = min(len(out), 4096)
        out[:n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        mid = len(out) // 2
        out[mid : mid + 4096] = rng.integers(0, 256, len(out[mid : mid + 4096]), dtype=np.uint8).tobytes()
        return bytes(out)
    if kind == "zeroed":  # allocated but never written
        return bytes(len(data))
    raise ValueError(f"unknown corruption kind {kind!r}")


def _write_frame(config: SynthConfig, store: ObjectStore, frame: RenderedFrame) -> dict[str, Any]:
    """Encode and write one frame (JPEG + SVG); returns its images-table row."""
    from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg

    slot = frame.slot
    sens = sensors(config, slot.datetime, slot.device_index)
    row: dict[str, Any] = {
        "device": slot.device,
        "card_id": frame.card_id,
        "date": slot.datetime.date(),
        "datetime": slot.datetime,
        "slot_index": slot.index,
        "stem": slot.stem,
        "status": slot.status,
        "corruption": slot.corruption,
        "key": None,
        "svg_key": None,
        "md5": None,
        "size_bytes": None,
        "lighting": frame.lighting,
        "daylight": frame.daylight,
        "shake_dx": frame.shake[0],
        "shake_dy": frame.shake[1],
        "n_instances": None,
        "n_on_card": frame.n_on_card,
        "temperature_c": sens["temp"],
        "humidity_pct": sens["hum"],
    }
    if frame.image is None:
        return row
    data = encode_jpeg(frame.image, config.jpeg_quality, exif_segment(config, slot.datetime, slot.device_index))
    if slot.status == "corrupt":
        rng = config.rng(KEY_CORRUPT, slot.device_index, slot.day_index, slot.index + 1)
        data = corrupt_bytes(data, slot.corruption or "truncated", rng)
    key = raw_image_key(slot.device, slot.stem)
    store.put_bytes(key, data, content_type="image/jpeg")
    row.update(key=key, md5=hashlib.md5(data).hexdigest(), size_bytes=len(data))
    if slot.status == "ok":
        instances = frame.instances
        metadata = {
            "device": slot.device,
            "datetime": format_datetime(slot.datetime),
            "md5": row["md5"],
            "annotator": GENERATOR,
            "annotator_version": GENERATOR_VERSION,
            "synthetic": True,
        }
        doc = UidSvg(jpeg_bytes=data, width=config.width, height=config.height, metadata=metadata, instances=instances)
        svg_key = ground_truth_uid_svg_key(slot.device, slot.stem)
        store.put_bytes(svg_key, write_uid_svg(doc), content_type="image/svg+xml")
        row.update(svg_key=svg_key, n_instances=len(instances))
    return row


# -- ground-truth tables ----------------------------------------------------------------------------------------

_TS = pa.timestamp("s", tz="UTC")
FRAMES_SCHEMA = pa.schema(
    [
        ("insect_id", pa.string()),
        ("card_id", pa.string()),
        ("device", pa.string()),
        ("datetime", _TS),
        ("image_stem", pa.string()),
        ("status", pa.string()),
        ("instance_index", pa.int32()),
        ("polygon", pa.list_(pa.list_(pa.int32(), 2))),
        ("centroid_x", pa.float64()),
        ("centroid_y", pa.float64()),
        ("bbox_x", pa.int32()),
        ("bbox_y", pa.int32()),
        ("bbox_w", pa.int32()),
        ("bbox_h", pa.int32()),
        ("area", pa.float64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("angle", pa.float64()),
        ("decay", pa.float64()),
        ("struggling", pa.bool_()),
        ("shake_dx", pa.int16()),
        ("shake_dy", pa.int16()),
    ]
)
IMAGES_SCHEMA = pa.schema(
    [
        ("device", pa.string()),
        ("card_id", pa.string()),
        ("date", pa.date32()),
        ("datetime", _TS),
        ("slot_index", pa.int32()),
        ("stem", pa.string()),
        ("status", pa.string()),
        ("corruption", pa.string()),
        ("key", pa.string()),
        ("svg_key", pa.string()),
        ("md5", pa.string()),
        ("size_bytes", pa.int64()),
        ("lighting", pa.string()),
        ("daylight", pa.float64()),
        ("shake_dx", pa.int16()),
        ("shake_dy", pa.int16()),
        ("n_instances", pa.int32()),
        ("n_on_card", pa.int32()),
        ("temperature_c", pa.float64()),
        ("humidity_pct", pa.float64()),
    ]
)
TRACKS_SCHEMA = pa.schema(
    [
        ("insect_id", pa.string()),
        ("card_id", pa.string()),
        ("device", pa.string()),
        ("number", pa.int32()),
        ("taxon", pa.string()),
        ("type", pa.string()),
        ("order", pa.string()),
        ("family", pa.string()),
        ("genus", pa.string()),
        ("species", pa.string()),
        ("taxon_key", pa.string()),
        ("sprite_source", pa.string()),
        ("fate", pa.string()),
        ("arrival_datetime", _TS),
        ("capture_datetime", _TS),
        ("last_visible_datetime", _TS),
        ("first_frame_datetime", _TS),
        ("last_frame_datetime", _TS),
        ("escape_datetime", _TS),
        ("decay_start_datetime", _TS),
        ("n_frames", pa.int32()),
        ("n_visible", pa.int32()),
        ("n_occluded", pa.int32()),
        ("n_missing", pa.int32()),
        ("n_corrupt", pa.int32()),
        ("n_out_of_frame", pa.int32()),
        ("gaps", pa.list_(pa.struct([("datetime", _TS), ("reason", pa.string())]))),
        ("capture_centroid_x", pa.float64()),
        ("capture_centroid_y", pa.float64()),
        ("capture_length_px", pa.int32()),
    ]
)
_STATUS_COUNT = {
    "visible": "n_visible",
    "occluded": "n_occluded",
    "missing_frame": "n_missing",
    "corrupt_frame": "n_corrupt",
    "out_of_frame": "n_out_of_frame",
}


@dataclass
class _Track:
    plan: InsectPlan
    sprite_source: str
    first_frame: datetime | None = None
    last_frame: datetime | None = None
    capture: datetime | None = None
    last_visible: datetime | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STATUS_COUNT.values(), 0))
    gaps: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    capture_row: dict[str, Any] | None = None

    def add(self, row: dict[str, Any]) -> None:
        when = row["datetime"]
        self.first_frame = self.first_frame or when
        self.last_frame = when
        self.counts[_STATUS_COUNT[row["status"]]] += 1
        if row["status"] == "visible":
            if self.capture is None:
                self.capture, self.capture_row = when, row
            self.gaps.extend(self.pending)
            self.pending.clear()
            self.last_visible = when
        elif self.capture is not None:
            self.pending.append({"datetime": when, "reason": row["status"]})

    def as_row(self) -> dict[str, Any]:
        p = self.plan
        levels = p.taxon.split(".")
        cap = self.capture_row or {}

        def ts(v: float | None) -> datetime | None:
            return None if v is None else datetime.fromtimestamp(math.floor(v), UTC)

        return {
            "insect_id": p.insect_id,
            "card_id": p.card_id,
            "device": p.device,
            "number": p.number,
            "taxon": p.taxon,
            "type": levels[0],
            "order": levels[1],
            "family": levels[2],
            "genus": levels[3],
            "species": levels[4],
            "taxon_key": p.taxon_key,
            "sprite_source": self.sprite_source,
            "fate": p.fate,
            "arrival_datetime": ts(p.arrival),
            "capture_datetime": self.capture,
            "last_visible_datetime": self.last_visible,
            "first_frame_datetime": self.first_frame,
            "last_frame_datetime": self.last_frame,
            "escape_datetime": ts(p.fate_time) if p.fate == "escapes" else None,
            "decay_start_datetime": ts(p.fate_time) if p.fate == "decays" else None,
            "n_frames": sum(self.counts.values()),
            **self.counts,
            "gaps": list(self.gaps),
            "capture_centroid_x": cap.get("centroid_x"),
            "capture_centroid_y": cap.get("centroid_y"),
            "capture_length_px": max(cap.get("bbox_w") or 0, cap.get("bbox_h") or 0) or None,
        }


class _GroundTruth:
    """Accumulates ground truth while frames stream by; Parquet parts live in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.frames_writer = pq.ParquetWriter(folder / "frames.parquet", FRAMES_SCHEMA)
        self.images_writer = pq.ParquetWriter(folder / "images.parquet", IMAGES_SCHEMA)
        self.tracks: dict[str, _Track] = {}
        self.day_summaries: list[dict[str, Any]] = []
        self.corrupt: list[dict[str, str]] = []

    def add_day(self, frame_rows: list[dict[str, Any]], image_rows: list[dict[str, Any]]) -> None:
        if frame_rows:
            self.frames_writer.write_table(pa.Table.from_pylist(frame_rows, FRAMES_SCHEMA))
        if image_rows:
            self.images_writer.write_table(pa.Table.from_pylist(image_rows, IMAGES_SCHEMA))

    def close(self) -> None:
        self.frames_writer.close()
        self.images_writer.close()

    def tracks_table(self) -> pa.Table:
        rows = [t.as_row() for t in self.tracks.values() if t.capture is not None]
        rows.sort(key=lambda r: (r["device"], r["insect_id"]))
        return pa.Table.from_pylist(rows, TRACKS_SCHEMA)


def _sprite_source(renderer: DeviceRenderer, plan: InsectPlan) -> str:
    if plan.sprite_ref >= 0 and renderer.real_pool is not None:
        return renderer.real_pool.sprites[plan.sprite_ref].source
    return f"procedural:{plan.taxon_key}:{plan.sprite_seed}"


# -- public entry points ----------------------------------------------------------------------------------------


@dataclass
class DaySummary:
    device: str
    date: str
    scheduled: int
    images: int
    missing: int
    corrupt: int
    instances: int
    insects_on_card: int
    seconds: float


def generate_device_day(
    config: SynthConfig,
    store: ObjectStore,
    device_index: int,
    day_index: int,
    *,
    renderer: DeviceRenderer | None = None,
    on_frame: Callable[[RenderedFrame], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], DaySummary]:
    """Render and write one device-day; returns (frames-table rows, images-table rows, summary).

    Encoding and writing run on one background thread so they overlap rendering; at most two frames are
    in memory. ``renderer`` lets consecutive days of a device reuse the card and sprites.
    """
    import time

    t0 = time.perf_counter()
    renderer = renderer or DeviceRenderer(config, device_index)
    frame_rows: list[dict[str, Any]] = []
    image_rows: list[dict[str, Any]] = []
    pending: list[Future[dict[str, Any]]] = []
    n_instances = 0
    on_card: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-write") as pool:
        for frame in renderer.frames(day_index):
            if on_frame is not None:
                on_frame(frame)
            frame_rows.extend(frame.rows)
            on_card.update(r["insect_id"] for r in frame.rows)
            if frame.slot.status == "ok":
                n_instances += len(frame.visible)
            if len(pending) >= 2:
                image_rows.append(pending.pop(0).result())
            pending.append(pool.submit(_write_frame, config, store, frame))
        image_rows.extend(f.result() for f in pending)
    statuses = [r["status"] for r in image_rows]
    summary = DaySummary(
        device=config.device_ids[device_index],
        date=config.day_date(day_index).isoformat(),
        scheduled=len(image_rows),
        images=sum(s != "missing" for s in statuses),
        missing=statuses.count("missing"),
        corrupt=statuses.count("corrupt"),
        instances=n_instances,
        insects_on_card=len(on_card),
        seconds=time.perf_counter() - t0,
    )
    return frame_rows, image_rows, summary


def generate(
    config: SynthConfig,
    store: ObjectStore,
    *,
    progress: bool = False,
    on_day: Callable[[DaySummary], None] | None = None,
) -> dict[str, Any]:
    """Generate the whole deployment into ``store``; returns the manifest's summary counts.

    Same config (seed included) → byte-identical objects. ``progress`` shows a tqdm bar per device-day;
    ``on_day`` is called after each device-day (e.g. to log or report progress elsewhere).
    """
    real_pool = load_real_pool(str(config.sprites_dir)) if config.real_sprites else None
    total = config.n_devices * config.days
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=total, desc="synth", unit="device-day", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="stickypi-synth-") as tmp:
        folder = Path(tmp)
        gt = _GroundTruth(folder)
        try:
            for device_index, device in enumerate(config.device_ids):
                renderer = DeviceRenderer(config, device_index, real_pool)
                for day_index in range(config.days):
                    frame_rows, image_rows, summary = generate_device_day(
                        config, store, device_index, day_index, renderer=renderer
                    )
                    plans = {p.insect_id: p for p in renderer.insects(day_index)}
                    for row in frame_rows:
                        track = gt.tracks.get(row["insect_id"])
                        if track is None:
                            plan = plans[row["insect_id"]]
                            track = gt.tracks[row["insect_id"]] = _Track(plan, _sprite_source(renderer, plan))
                        track.add(row)
                    gt.corrupt.extend(
                        {"key": r["key"], "kind": r["corruption"]} for r in image_rows if r["status"] == "corrupt"
                    )
                    gt.add_day(frame_rows, image_rows)
                    gt.day_summaries.append({k: v for k, v in summary.__dict__.items() if k != "seconds"})
                    if on_day is not None:
                        on_day(summary)
                    if bar is not None:
                        bar.set_postfix_str(f"{device} {summary.date} {summary.seconds:.1f}s")
                        bar.update(1)
                del renderer
        finally:
            gt.close()
            if bar is not None:
                bar.close()
        tracks = gt.tracks_table()
        pq.write_table(tracks, folder / "tracks.parquet")
        store.put_file(ground_truth_key("frames.parquet"), folder / "frames.parquet")
        store.put_file(ground_truth_key("images.parquet"), folder / "images.parquet")
        store.put_file(ground_truth_key("tracks.parquet"), folder / "tracks.parquet")
        _write_itc_database(folder / "database.db", tracks)
        store.put_file(ground_truth_key("itc/database.db"), folder / "database.db")
        manifest = _manifest(config, gt, tracks)
        store.put_bytes(
            ground_truth_key("manifest.json"),
            (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode(),
            content_type="application/json",
        )
    return manifest["summary"]


def _write_itc_database(path: Path, tracks: pa.Table) -> None:
    from stickypi_assets.formats.itc_database import TuboidAnnotation, write_annotations

    rows = [
        TuboidAnnotation(
            tuboid_id=r["insect_id"],
            user=ITC_USER,
            type=r["type"],
            order=r["order"],
            family=r["family"],
            genus=r["genus"],
            species=r["species"],
            extra=None,
            confidence=None,
            notes=None,
            datetime=float(r["capture_datetime"].timestamp()),
        )
        for r in tracks.to_pylist()
    ]
    write_annotations(path, rows)


def _manifest(config: SynthConfig, gt: _GroundTruth, tracks: pa.Table) -> dict[str, Any]:
    days = gt.day_summaries
    taxa: dict[str, int] = {}
    for taxon in tracks.column("taxon").to_pylist():
        taxa[taxon] = taxa.get(taxon, 0) + 1
    fates: dict[str, int] = {}
    for fate in tracks.column("fate").to_pylist():
        fates[fate] = fates.get(fate, 0) + 1
    summary = {
        "devices": config.n_devices,
        "days": config.days,
        "scheduled_frames": sum(d["scheduled"] for d in days),
        "images": sum(d["images"] for d in days),
        "missing_frames": sum(d["missing"] for d in days),
        "corrupt_images": sum(d["corrupt"] for d in days),
        "insects": tracks.num_rows,
        "instances": sum(d["instances"] for d in days),
        "taxa": dict(sorted(taxa.items())),
        "fates": dict(sorted(fates.items())),
    }
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "summary": summary,
        "config": config.to_dict(),
        "device_days": days,
        "corrupt_images": gt.corrupt,
        "objects": {
            "raw_images": raw_image_key("<device>", "<device>.<YYYY-MM-DD_HH-MM-SS>"),
            "uid_svgs": ground_truth_uid_svg_key("<device>", "<device>.<YYYY-MM-DD_HH-MM-SS>"),
            "frames": ground_truth_key("frames.parquet"),
            "tracks": ground_truth_key("tracks.parquet"),
            "images": ground_truth_key("images.parquet"),
            "itc_database": ground_truth_key("itc/database.db"),
        },
        "conventions": {
            "insect_id": "<device>.<card start>.<card end>.synth.<NNNN>: shaped like a SIM tuboid id "
            "(series = the card, 'synth' in place of the model version, NNNN = arrival order on the card); "
            "it is the tuboid_id of the ITC database",
            "capture_datetime": "first frame in which the insect is visible (in the UID SVG)",
            "frame_status": "visible (in the SVG) | occluded (hidden by a glare, absent from the SVG) | "
            "missing_frame (no image) | corrupt_frame (unreadable image, no SVG) | out_of_frame",
            "gaps": "non-visible frames between capture and last visible frame, with their reason",
            "polygon": "outline of the sprite's alpha >= 0.4 as rendered (frame pixels, camera shake included)",
            "taxon": "type.order.family.genus.species (ITC convention, empty levels empty)",
            "times": "UTC; image names truncate to whole seconds",
        },
    }
