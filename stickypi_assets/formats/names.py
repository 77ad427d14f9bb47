"""Sticky Pi image names: ``<device>.<YYYY-MM-DD_HH-MM-SS>.jpg``.

The file name is the only trusted timestamp (the EXIF clock lags the trigger time by a few seconds),
so parsing is strict and every failure says what was expected. Datetimes are UTC by convention in the
original tools; we return timezone-aware UTC datetimes so nothing downstream guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from stickypi_assets.formats.errors import FormatError

DATETIME_FORMAT = "%Y-%m-%d_%H-%M-%S"
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")
_DEVICE_RE = re.compile(r"^[0-9a-fA-F]{8}$")
_CANONICAL_DEVICE_RE = re.compile(r"^[0-9a-f]{8}$")
#: The platform did not exist before this date; older stamps are clock errors (the API rejects them too).
EARLIEST_VALID = datetime(2019, 11, 1, tzinfo=UTC)


class InvalidImageName(FormatError):
    """A name that is not ``<device>.<YYYY-MM-DD_HH-MM-SS>.<ext>``."""


@dataclass(frozen=True, order=True)
class ImageName:
    """Device and UTC capture time parsed from a Sticky Pi file name."""

    device: str
    datetime: datetime

    @property
    def stem(self) -> str:
        """``<device>.<datetime>`` (the stem shared by the JPEG and its SVG)."""
        return f"{self.device}.{format_datetime(self.datetime)}"

    def filename(self, ext: str = "jpg") -> str:
        return f"{self.stem}.{ext}"


def is_valid_device(device: str) -> bool:
    """A device id is 8 hex digits (the Raspberry Pi chip id)."""
    return bool(_DEVICE_RE.match(device))


def validate_device(device: str) -> str:
    """Return the device id or raise a clear error.

    Strictness also protects Dagster: dynamic partition keys containing ``|``, ``,`` or brackets break
    multi-partition keys and UI backfills. Either case is accepted here, for ids typed by people (a synth
    config lower-cases them); names *read from storage* go through :func:`validate_stored_device`.
    """
    if not isinstance(device, str) or not is_valid_device(device):
        raise InvalidImageName(f"invalid device id {device!r}: expected 8 hexadecimal digits, e.g. '0a5bb6f4'")
    return device


def is_canonical_device(device: str) -> bool:
    """8 *lower-case* hex digits: the one spelling of a device id in object keys and partition keys."""
    return isinstance(device, str) and bool(_CANONICAL_DEVICE_RE.match(device))


def validate_stored_device(device: str) -> str:
    """Return a device id read from storage (a ``raw_images/<device>/`` folder, a file name) if canonical.

    The rule, decided once here: stored device ids are refused unless lower-case, never normalised.
    Object keys are case-sensitive (S3, Linux), so ``raw_images/0A1B2C3D/`` beside ``raw_images/0a1b2c3d/``
    is a second folder. Normalising it would merge two devices' listings in name only (the lower-case
    partition lists only its own prefix, so the upper-case files would silently never be indexed, and every
    key derived from an :class:`ImageName` would differ from the JPEG's real key); accepting it would add a
    second device. Refused, the folder is reported by device discovery and by ``stickypi images audit``
    with the lower-case spelling to rename it to.
    """
    validate_device(device)
    if not is_canonical_device(device):
        raise InvalidImageName(
            f"invalid device id {device!r}: stored device ids are lower-case hex; rename it to {device.lower()!r} "
            "(an upper-case folder or file name is refused, not merged into or added beside the lower-case one)"
        )
    return device


def parse_datetime(text: str) -> datetime:
    """Parse ``YYYY-MM-DD_HH-MM-SS`` into an aware UTC datetime."""
    if not _DATETIME_RE.match(text):
        raise InvalidImageName(f"invalid datetime {text!r}: expected YYYY-MM-DD_HH-MM-SS")
    try:
        return datetime.strptime(text, DATETIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13, hour 25, 31 June
        raise InvalidImageName(
            f"invalid datetime {text!r}: not a real calendar date and time (UTC, 24-hour clock)"
        ) from None


def format_datetime(dt: datetime) -> str:
    """Inverse of :func:`parse_datetime`; naive datetimes are taken as UTC."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime(DATETIME_FORMAT)


def parse_stem(stem: str, *, check_epoch: bool = True) -> ImageName:
    """Parse ``<device>.<datetime>`` (no extension); the device must be lower-case (:func:`validate_stored_device`)."""
    fields = stem.split(".")
    if len(fields) != 2:
        raise InvalidImageName(f"invalid image stem {stem!r}: expected '<device>.<YYYY-MM-DD_HH-MM-SS>'")
    device, dt_text = fields
    try:
        validate_stored_device(device)
        dt = parse_datetime(dt_text)
    except InvalidImageName as exc:
        raise InvalidImageName(f"invalid image name {stem!r}: {exc}") from None
    if check_epoch and dt < EARLIEST_VALID:
        raise InvalidImageName(
            f"invalid image name {stem!r}: datetime before {EARLIEST_VALID:%Y-%m-%d} (device clock not set?)"
        )
    return ImageName(device=device, datetime=dt)


def parse_image_name(name: str, *, ext: str | None = "jpg", check_epoch: bool = True) -> ImageName:
    """Parse a Sticky Pi file name or object key (directories are ignored).

    ``ext`` is the required extension (case-insensitive); ``None`` accepts any.
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    fields = base.split(".")
    if len(fields) != 3:
        raise InvalidImageName(
            f"invalid image name {base!r}: expected three dot-separated fields "
            "'<device>.<YYYY-MM-DD_HH-MM-SS>.<ext>'"
        )
    if ext is not None and fields[2].lower() != ext.lower():
        raise InvalidImageName(f"invalid image name {base!r}: expected extension '.{ext}'")
    return parse_stem(f"{fields[0]}.{fields[1]}", check_epoch=check_epoch)
