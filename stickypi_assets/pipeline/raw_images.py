"""Index the raw images of one device-day (no Dagster: usable from the CLI and notebooks).

Raw images live at ``raw_images/<device>/<device>.<YYYY-MM-DD_HH-MM-SS>.jpg`` (the Sticky Pi API layout),
so one day of one device is a single prefix listing, never a scan of the device's whole history.

Nothing is lost and nothing kills the partition: every object under the day's prefix becomes a row.
Unreadable or truncated JPEGs, names that do not parse, and objects filed under another device's folder get
``status='error'`` with the reason; byte-identical re-uploads under another name get ``status='duplicate'``.
"""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from PIL import Image, UnidentifiedImageError

from stickypi_assets.formats.names import InvalidImageName, parse_image_name, validate_device
from stickypi_assets.formats.split import md5_bytes
from stickypi_assets.storage.keys import raw_day_prefix, raw_images_prefix
from stickypi_assets.storage.object_store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

_EXIF_MAKE = 0x010F  # Sticky Pi firmware stores a Python-literal dict of sensor data in the Make tag


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    temperature_c: float | None = None
    humidity_pct: float | None = None


class ImageDecodeError(ValueError):
    """The bytes are not a complete, decodable JPEG."""


def inspect_jpeg(data: bytes) -> DecodedImage:
    """Fully decode the JPEG once (truncated files fail here, not later in a model) and read EXIF sensors."""
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                raise ImageDecodeError(f"not a JPEG (detected {img.format})")
            img.load()  # full decode: raises OSError on truncated or corrupt data
            width, height = img.size
            make = img.getexif().get(_EXIF_MAKE)
    except UnidentifiedImageError as exc:
        if data.startswith(b"\xff\xd8"):  # JPEG start-of-image marker, then garbage
            raise ImageDecodeError("corrupt JPEG: start marker present but the header is unreadable") from exc
        raise ImageDecodeError("not an image (unrecognised header)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"corrupt JPEG: {exc}") from exc
    temp = hum = None
    if isinstance(make, str) and make.startswith("{"):
        try:
            sensors = ast.literal_eval(make)
            temp = _as_float(sensors.get("temp"))
            hum = _as_float(sensors.get("hum"))
        except (ValueError, SyntaxError, AttributeError):
            log.debug("EXIF Make is not a sensor dict: %.80s", make)
    return DecodedImage(width=width, height=height, temperature_c=temp, humidity_pct=hum)


def _as_float(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass
class DayIndex:
    """Rows of the ``images`` table for one device-day, plus a summary for metadata and logs."""

    device: str
    date: date
    rows: pd.DataFrame
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.rows)

    def count(self, status: str) -> int:
        return int((self.rows["status"] == status).sum()) if len(self.rows) else 0


def iter_day_objects(store: ObjectStore, device: str, day: date) -> Iterator[ObjectInfo]:
    yield from store.list(raw_day_prefix(device, day))


def index_device_day(
    store: ObjectStore,
    device: str,
    day: date,
    *,
    run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DayIndex:
    """Read, verify and describe every raw image object of ``device`` on UTC ``day``."""
    objects = list(iter_day_objects(store, device, day))
    now = datetime.now(UTC)
    rows: list[dict] = []
    errors: list[tuple[str, str]] = []
    first_key_by_md5: dict[str, str] = {}
    for i, info in enumerate(objects):
        row: dict = {
            "device": device,
            "date": day,
            "datetime": None,
            "object_key": info.key,
            "md5": None,
            "size_bytes": info.size,
            "width": None,
            "height": None,
            "status": "ok",
            "error": None,
            "temperature_c": None,
            "humidity_pct": None,
            "run_id": run_id,
            "ingested_at": now,
        }
        try:
            name = parse_image_name(info.key)
            if name.device != device:
                raise InvalidImageName(f"file of device {name.device} stored under raw_images/{device}/")
            if name.datetime.date() != day:  # cannot happen with the day prefix; kept as a guard
                raise InvalidImageName(f"datetime {name.datetime} is not on {day}")
            row["datetime"] = name.datetime
            data = store.get_bytes(info.key)
            row["md5"] = md5_bytes(data)
            row["size_bytes"] = len(data)
            decoded = inspect_jpeg(data)
            row.update(
                width=decoded.width,
                height=decoded.height,
                temperature_c=decoded.temperature_c,
                humidity_pct=decoded.humidity_pct,
            )
            if row["md5"] in first_key_by_md5:
                row["status"] = "duplicate"
                row["error"] = f"same bytes as {first_key_by_md5[row['md5']]}"
            else:
                first_key_by_md5[row["md5"]] = info.key
        except (InvalidImageName, ImageDecodeError) as exc:
            row["status"] = "error"
            row["error"] = str(exc)
            errors.append((info.key, str(exc)))
            log.warning("image %s: %s", info.key, exc)
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(objects))
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
    if frame.empty:
        frame = pd.DataFrame(columns=["device", "date", "datetime", "object_key", "status"])
    return DayIndex(device=device, date=day, rows=frame, errors=errors)


def discover_devices(store: ObjectStore) -> tuple[list[str], list[str]]:
    """Device folders under ``raw_images/``: (valid device ids, rejected folder names).

    Invalid names are reported rather than added: Dagster multi-partition keys break on ``|``, ``,`` and
    brackets, and the Sticky Pi convention is 8 hex digits.
    """
    valid, rejected = [], []
    for prefix in store.list_prefixes(raw_images_prefix()):
        name = prefix[len(raw_images_prefix()) :].rstrip("/")
        try:
            valid.append(validate_device(name))
        except InvalidImageName:
            rejected.append(name)
    return sorted(valid), sorted(rejected)


def audit_raw_images(store: ObjectStore) -> list[tuple[str, str]]:
    """Objects under ``raw_images/`` that no device-day partition will ever index, with the reason.

    A day's index lists only its own prefix (cheap on S3), so misfiled or misnamed uploads would otherwise
    go unnoticed. Run it from the CLI (``stickypi images audit``) or a scheduled check; it lists the whole
    prefix, so it is not run per partition.
    """
    problems = []
    for info in store.list(raw_images_prefix()):
        parts = info.key.split("/")
        if len(parts) != 3:
            problems.append((info.key, "not in a raw_images/<device>/ folder"))
            continue
        folder, name = parts[1], parts[2]
        if name.endswith((".thumbnail", ".thumbnail-mini")):
            continue  # Sticky Pi API thumbnails live beside the images by design
        try:
            validate_device(folder)
            parsed = parse_image_name(name)
        except InvalidImageName as exc:
            problems.append((info.key, str(exc)))
            continue
        if parsed.device != folder:
            problems.append((info.key, f"image of device {parsed.device} filed under raw_images/{folder}/"))
    return problems


def image_days(store: ObjectStore, device: str) -> list[date]:
    """The UTC days that have at least one well-named image of ``device`` (for backfill hints and the demo)."""
    days = set()
    for info in store.list(raw_images_prefix(device)):
        try:
            days.add(parse_image_name(info.key).datetime.date())
        except InvalidImageName:
            continue
    return sorted(days)
