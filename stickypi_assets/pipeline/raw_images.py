"""Index the raw images of one device-day (no Dagster: usable from the CLI and notebooks).

Raw images live at ``raw_images/<device>/<device>.<YYYY-MM-DD_HH-MM-SS>.jpg`` (the Sticky Pi API layout),
so one day of one device is a single prefix listing, never a scan of the device's whole history.

Nothing is lost and nothing kills the partition: every object under the day's prefix becomes a row.
Unreadable, truncated or oversized JPEGs, keys no store call accepts (a backslash, ``//``), names that do not
parse, and objects filed under another device's folder get ``status='error'`` with the reason; byte-identical
re-uploads under another name get ``status='duplicate'``. Each object is handled inside one ``try``
(:func:`_index_object`): the expected failures keep their own message, and any other exception from that one
object's read, decode or metadata is recorded as ``unexpected <Type>: <message>`` and logged with its traceback,
so a bug shows up in the table and the log instead of killing the day or hiding. Only a failure of the store
itself (unreachable, access denied) fails the partition: the day is then retried, not published as errors.
"""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from stickypi_assets.formats.names import (
    ImageName,
    InvalidImageName,
    parse_image_name,
    validate_stored_device,
)
from stickypi_assets.formats.split import md5_bytes
from stickypi_assets.settings import Settings
from stickypi_assets.storage.keys import raw_day_prefix, raw_images_prefix
from stickypi_assets.storage.object_store import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectTooLarge,
    validate_key,
)

log = logging.getLogger(__name__)

_EXIF_MAKE = 0x010F  # Sticky Pi firmware stores a Python-literal dict of sensor data in the Make tag
#: A sensor dict is ~60 characters; a longer Make is not parsed (literal_eval cost grows with the text).
_MAX_MAKE_CHARS = 4096
#: Start-of-frame markers that carry the frame size (all SOFn except DHT, JPG and DAC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS, _EOI = 0xDA, 0xD9
#: Markers without a length field: RST0-7 and TEM.
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}
#: libjpeg decodes the MCUs missing from a scan (data cut short, then any marker) as zero coefficients: exactly
#: this value in every channel, with only a warning that neither Pillow nor OpenCV reports.
_LIBJPEG_FILL = 128


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    temperature_c: float | None = None
    humidity_pct: float | None = None
    #: Why metadata was left empty although the pixels are fine (e.g. an EXIF Make that is not a sensor dict).
    warnings: tuple[str, ...] = ()


class ImageDecodeError(ValueError):
    """The bytes are not a complete, decodable JPEG (or one too large to decode)."""


@dataclass(frozen=True)
class JpegHeader:
    """What the JPEG's own markers say, read without decoding (so a hostile size is refused before any work)."""

    width: int
    height: int
    #: MCU size in pixels (8 x the largest sampling factors): the unit libjpeg fills when data is missing.
    mcu_width: int
    mcu_height: int
    n_components: int


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """Walk the marker segments to the first start-of-frame; ``None`` when the structure cannot be walked.

    ``None`` is not an error here: :func:`inspect_jpeg` then lets Pillow say what is wrong with the file.
    APPn segments are skipped by their length, so the EXIF thumbnail's own SOF is never mistaken for the frame's.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in (_SOS, _EOI):  # no frame header before the scan
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            segment = data[pos + 4 : pos + 2 + length]
            if len(segment) < 6:
                return None
            height = int.from_bytes(segment[1:3], "big")
            width = int.from_bytes(segment[3:5], "big")
            n_components = segment[5]
            factors = segment[6 : 6 + 3 * n_components]
            h_max = max((b >> 4 for b in factors[1::3]), default=1) or 1
            v_max = max((b & 0x0F for b in factors[1::3]), default=1) or 1
            return JpegHeader(width, height, 8 * h_max, 8 * v_max, n_components)
        pos += 2 + length
    return None


def inspect_jpeg(data: bytes, *, max_pixels: int | None = None) -> DecodedImage:
    """Fully decode the JPEG once (truncated files fail here, not later in a model) and read EXIF sensors.

    ``max_pixels`` (default ``Settings.max_image_pixels``, env ``STICKYPI_MAX_IMAGE_PIXELS``) bounds the
    decode: the size is read from the header first, so a file claiming 60000x60000 px costs nothing. Pillow's
    own decompression-bomb limit is process-wide and raises a non-``OSError``; it is translated here too.

    Completeness is checked on the decoded pixels, not trusted to the decoder: a JPEG cut short and closed
    with an EOI marker, or whose SOF claims more rows than the data holds, decodes without error in Pillow and
    OpenCV (which the models use), the missing part filled with uniform grey. Such a file is refused when its
    last MCU is exactly that fill. (A genuine frame whose bottom-right 16x16 block is exactly RGB 128 would be
    refused too; camera frames have sensor noise, so this is accepted.)
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    limit = Settings.from_env().max_image_pixels if max_pixels is None else max_pixels
    header = read_jpeg_header(data)
    if header is not None:
        _check_pixels(header.width, header.height, limit)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                raise ImageDecodeError(f"not a JPEG (detected {img.format})")
            width, height = img.size
            _check_pixels(width, height, limit)  # the header walk may have failed where Pillow's did not
            img.load()  # full decode: raises OSError on data that ends without a marker
            if getattr(img, "_ended", False):  # set when ImageFile.LOAD_TRUNCATED_IMAGES made Pillow pad the file
                raise ImageDecodeError("corrupt JPEG: image file is truncated")
            _check_complete(img, header)
            make, exif_warning = _exif_make(img)
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"image exceeds Pillow's decompression-bomb limit: {exc}") from exc
    except UnidentifiedImageError as exc:
        if data.startswith(b"\xff\xd8"):  # JPEG start-of-image marker, then garbage
            raise ImageDecodeError("corrupt JPEG: start marker present but the header is unreadable") from exc
        raise ImageDecodeError("not an image (unrecognised header)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageDecodeError):
            raise
        raise ImageDecodeError(f"corrupt JPEG: {exc}") from exc
    temp, hum, sensor_warning = _sensors(make)
    warnings = tuple(w for w in (exif_warning, sensor_warning) if w)
    return DecodedImage(width=width, height=height, temperature_c=temp, humidity_pct=hum, warnings=warnings)


def _check_pixels(width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageDecodeError(f"image of {width}x{height} px exceeds STICKYPI_MAX_IMAGE_PIXELS={limit}")


def _check_complete(img: Image.Image, header: JpegHeader | None) -> None:
    """Refuse an image whose last MCU is libjpeg's fill for missing data (see :func:`inspect_jpeg`)."""
    if img.mode not in ("L", "RGB"):  # CMYK/YCCK fills differ; such files do not come from Sticky Pi cameras
        return
    mcu_w, mcu_h = (header.mcu_width, header.mcu_height) if header else (16, 16)
    width, height = img.size
    if width == 0 or height == 0:
        raise ImageDecodeError(f"corrupt JPEG: frame of {width}x{height} px")
    # The last MCU of the grid; its top/left 2 px are skipped: chroma upsampling blends them with the neighbours.
    x0 = (width - 1) // mcu_w * mcu_w
    y0 = (height - 1) // mcu_h * mcu_h
    x0, y0 = (x0 + 2 if width - x0 > 2 else x0), (y0 + 2 if height - y0 > 2 else y0)
    corner = np.asarray(img.crop((x0, y0, width, height)))
    if corner.size and bool((corner == _LIBJPEG_FILL).all()):
        raise ImageDecodeError(
            f"corrupt JPEG: the data ends before the {width}x{height} px frame does (its last {mcu_w}x{mcu_h} "
            "block is the decoder's grey fill): truncated, or the header claims a larger size than encoded"
        )


def _exif_make(img: Image.Image) -> tuple[object, str | None]:
    """The EXIF Make value, or ``None`` and why: broken EXIF loses the sensor readings, never the image."""
    try:
        return img.getexif().get(_EXIF_MAKE), None
    except Exception as exc:  # hostile EXIF: Pillow's parser raises struct.error, KeyError, ... - recorded
        return None, f"EXIF unreadable ({type(exc).__name__}: {exc}); temperature and humidity left empty"


def _sensors(make: object) -> tuple[float | None, float | None, str | None]:
    """Temperature and humidity from the firmware's Make dict, plus why they are empty if the Make is junk."""
    if not isinstance(make, str) or not make.startswith("{"):
        return None, None, None  # not Sticky Pi firmware: no sensor data, nothing to report
    if len(make) > _MAX_MAKE_CHARS:
        return None, None, f"EXIF Make is {len(make)} characters long, not a sensor dict; not parsed"
    try:
        sensors = ast.literal_eval(make)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        # TypeError: an unhashable literal such as "{[1, 2]: 0}"; the others: text that is no literal
        return None, None, f"EXIF Make {make[:80]!r} is not a sensor dict ({type(exc).__name__}: {exc})"
    if not isinstance(sensors, dict):
        return None, None, f"EXIF Make {make[:80]!r} is a {type(sensors).__name__}, not a sensor dict"
    return _as_float(sensors.get("temp")), _as_float(sensors.get("hum")), None


def _as_float(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass
class DayIndex:
    """Rows of the ``images`` table for one device-day, plus a summary for metadata and logs."""

    device: str
    date: date
    rows: pd.DataFrame
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: (key, why) for images that are ``ok`` but lost some metadata (e.g. EXIF sensor readings).
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.rows)

    def count(self, status: str) -> int:
        return int((self.rows["status"] == status).sum()) if len(self.rows) else 0


def iter_day_objects(store: ObjectStore, device: str, day: date) -> Iterator[ObjectInfo]:
    yield from store.list(raw_day_prefix(device, day))


def image_name_of(key: str, device: str) -> ImageName:
    """The image name of ``key`` if it is a well-formed ``raw_images/<device>/<device>.<datetime>.jpg`` key.

    One rule for the day index, :func:`image_days` and the audit. A key written by another tool may be listed
    yet refused by every store call (a backslash, ``//``): it is refused here first, with the store's reason,
    rather than parsed (``parse_image_name`` reads ``a\\b.jpg`` as ``b.jpg``) and then failing in ``get_bytes``.
    Keys in a sub-folder of the device folder are refused too: one file name, one image.
    """
    try:
        validate_key(key)
    except InvalidKey as exc:
        raise InvalidImageName(f"key not readable through the object store: {exc}") from None
    folder, _, base = key.rpartition("/")
    if folder + "/" != raw_images_prefix(device):
        raise InvalidImageName(f"not directly in {raw_images_prefix(device)} (found in {folder}/)")
    name = parse_image_name(base)
    if name.device != device:
        raise InvalidImageName(f"image of device {name.device} filed under {raw_images_prefix(device)}")
    return name


def index_device_day(
    store: ObjectStore,
    device: str,
    day: date,
    *,
    run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_image_pixels: int | None = None,
) -> DayIndex:
    """Read, verify and describe every raw image object of ``device`` on UTC ``day``.

    ``max_image_pixels`` defaults to ``Settings.max_image_pixels`` (env ``STICKYPI_MAX_IMAGE_PIXELS``), read
    once per call. The largest object read whole is the store's own limit (``STICKYPI_MAX_OBJECT_BYTES``); an
    object over it is an error row. A device id that is not canonical (:func:`validate_stored_device`) is
    refused for the whole call: such a partition should not exist and is not given a table partition.
    """
    validate_stored_device(device)
    limit = Settings.from_env().max_image_pixels if max_image_pixels is None else max_image_pixels
    objects = list(iter_day_objects(store, device, day))
    now = datetime.now(UTC)
    rows: list[dict] = []
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
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
        reason = _index_object(store, info, device, day, row, limit)
        if reason is not None:
            row["status"], row["error"] = "error", reason
            errors.append((info.key, reason))
        elif row["md5"] in first_key_by_md5:
            row["status"] = "duplicate"
            row["error"] = f"same bytes as {first_key_by_md5[row['md5']]}"
        else:
            first_key_by_md5[row["md5"]] = info.key
        for warning in row.pop("_warnings", ()):
            warnings.append((info.key, warning))
            log.warning("image %s: %s", info.key, warning)
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(objects))
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
    if frame.empty:
        frame = pd.DataFrame(columns=["device", "date", "datetime", "object_key", "status"])
    return DayIndex(device=device, date=day, rows=frame, errors=errors, warnings=warnings)


def _index_object(store: ObjectStore, info: ObjectInfo, device: str, day: date, row: dict, limit: int) -> str | None:
    """Fill ``row`` from one object; return why it is unusable, or ``None``. The one ``try`` per object.

    Store failures that concern the store rather than this object (:class:`ObjectStoreError` other than a
    refused key, a vanished or an oversized object) propagate: recording good images as errors would publish
    a wrong day, while a failed partition is retried.
    """
    try:
        name = image_name_of(info.key, device)
        if name.datetime.date() != day:  # cannot happen with the day prefix; kept as a guard
            raise InvalidImageName(f"datetime {name.datetime} is not on {day}")
        row["datetime"] = name.datetime
        data = store.get_bytes(info.key)
        row["md5"] = md5_bytes(data)
        row["size_bytes"] = len(data)
        decoded = inspect_jpeg(data, max_pixels=limit)
        row.update(
            width=decoded.width,
            height=decoded.height,
            temperature_c=decoded.temperature_c,
            humidity_pct=decoded.humidity_pct,
            _warnings=decoded.warnings,
        )
    except (InvalidImageName, ImageDecodeError, InvalidKey, ObjectNotFound, ObjectTooLarge) as exc:
        log.warning("image %s: %s", info.key, exc)
        return str(exc)
    except ObjectStoreError:
        raise
    except Exception as exc:  # any other failure of this one object: recorded with its type, never hidden
        log.exception("image %s: unexpected %s while indexing it (recorded as an error row)", info.key,
                      type(exc).__name__)  # fmt: skip
        return f"unexpected {type(exc).__name__}: {exc}"
    return None


def discover_devices(store: ObjectStore) -> tuple[list[str], list[str]]:
    """Device folders under ``raw_images/``: (valid device ids, rejected folder names).

    Invalid names are reported rather than added: Dagster multi-partition keys break on ``|``, ``,`` and
    brackets, and the Sticky Pi convention is 8 lower-case hex digits. An upper-case twin such as
    ``raw_images/0A1B2C3D/`` is rejected too, never added as a second device nor merged into ``0a1b2c3d``
    (the rule and why: :func:`~stickypi_assets.formats.names.validate_stored_device`).
    """
    valid, rejected = [], []
    for prefix in store.list_prefixes(raw_images_prefix()):
        name = prefix[len(raw_images_prefix()) :].rstrip("/")
        try:
            valid.append(validate_stored_device(name))
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
        if len(parts) < 3:
            problems.append((info.key, "not in a raw_images/<device>/ folder"))
            continue
        folder, name = parts[1], parts[-1]
        if len(parts) == 3 and name.endswith((".thumbnail", ".thumbnail-mini")):
            continue  # Sticky Pi API thumbnails live beside the images by design
        try:
            validate_stored_device(folder)
        except InvalidImageName as exc:
            problems.append((info.key, str(exc)))
            continue
        try:
            image_name_of(info.key, folder)
        except InvalidImageName as exc:
            problems.append((info.key, str(exc)))
    return problems


def image_days(store: ObjectStore, device: str) -> list[date]:
    """The UTC days that have at least one well-named image of ``device`` (for backfill hints and the demo)."""
    days = set()
    for info in store.list(raw_images_prefix(device)):
        try:
            days.add(image_name_of(info.key, device).datetime.date())
        except InvalidImageName:
            continue
    return sorted(days)
