"""The one object-key layout: every key or prefix the platform reads or writes in the object store is built here.

The twin of :mod:`stickypi_assets.storage.tables` (the table layout) and of the README's key table. Keys follow the
Sticky Pi API layout where one exists (``raw_images/<device>/<device>.<datetime>.jpg``, ``tiled_tuboids/…``,
``ml/<bundle>/…``), so an existing Sticky Pi bucket can be used as it is; the platform's own objects get equally
plain keys. ``<stem>`` is always ``<device>.<YYYY-MM-DD_HH-MM-SS>`` (UTC), a day is a UTC ``date``.

Why one module: a day's objects are found by listing a prefix, and a prefix that one writer builds differently from
its reader silently loses data (an empty listing looks like a day without images). With one builder per kind of
object, writer, reader, sensor, check and test cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime

from stickypi_assets.formats.names import format_datetime, validate_device

RAW_IMAGES = "raw_images"
UID_ANNOTATIONS = "uid_annotations"
TILED_TUBOIDS = "tiled_tuboids"
SIM_VIDEOS = "sim_videos"
SIM_STATE = "sim_state"
WAREHOUSE = "warehouse"
MODELS = "ml"
ANNOTATIONS = "annotations"
GROUND_TRUTH = "ground_truth"
PRE_ANNOTATIONS = "pre_annotations"


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One device-day: the unit of replacement of every partitioned table and of the day's objects."""

    device: str
    date: date

    def __post_init__(self) -> None:
        """A device id is 8 hex digits and a date a calendar day: a key never names a folder outside its table
        (``a/b``, ``..``) nor a partition the listing cannot parse back."""
        validate_device(self.device)
        if not isinstance(self.date, date) or isinstance(self.date, datetime):
            raise TypeError(f"partition date must be a datetime.date, not {type(self.date).__name__}")

    @property
    def path(self) -> str:
        """Hive-style folder of the partition's Parquet object (``device=<device>/date=<YYYY-MM-DD>``)."""
        return f"device={self.device}/date={self.date.isoformat()}"

    def __str__(self) -> str:
        return f"{self.device}|{self.date.isoformat()}"


def day_start(day: date) -> datetime:
    """00:00 UTC of ``day``: where a device-day (and its tuboid series) begins."""
    return datetime.combine(day, dtime(0), tzinfo=UTC)


def _device_key(root: str, device: str, name: str) -> str:
    """``<root>/<device>/<name>``: the per-device folders of the Sticky Pi API layout."""
    return f"{root}/{device}/{name}"


def _device_day(root: str, device: str, day: date) -> str:
    """``<root>/<device>/<device>.<YYYY-MM-DD>``: where the names of a device-day's objects start."""
    return _device_key(root, device, f"{device}.{day.isoformat()}")


# -- raw images (Sticky Pi API layout) ------------------------------------------------------------------------


def raw_image_key(device: str, stem: str) -> str:
    """``raw_images/<device>/<stem>.jpg``: a device's JPEG."""
    return _device_key(RAW_IMAGES, device, f"{stem}.jpg")


def raw_images_prefix(device: str | None = None) -> str:
    """Every raw image (``raw_images/``), or one device's (``raw_images/<device>/``)."""
    return f"{RAW_IMAGES}/" if device is None else f"{RAW_IMAGES}/{device}/"


def raw_day_prefix(device: str, day: date) -> str:
    """One device-day's JPEGs: their names start with ``<device>.<YYYY-MM-DD>_``, one listing, never a scan."""
    validate_device(device)
    return _device_day(RAW_IMAGES, device, day) + "_"


# -- UID annotations predicted by the platform ------------------------------------------------------------------


def uid_annotation_key(device: str, stem: str) -> str:
    """``uid_annotations/<device>/<stem>.svg``: the UID's annotation SVG of one image (embedding its JPEG)."""
    return _device_key(UID_ANNOTATIONS, device, f"{stem}.svg")


def uid_annotation_day_prefix(device: str, day: date) -> str:
    return _device_day(UID_ANNOTATIONS, device, day) + "_"


# -- SIM outputs ----------------------------------------------------------------------------------------------


def tuboid_key(relpath: str) -> str:
    """``tiled_tuboids/<series>/<folder>/<file>`` (original layout) from the path relative to ``tiled_tuboids/``."""
    return f"{TILED_TUBOIDS}/{relpath}"


def tuboid_folder_key(series: str, folder_id: str) -> str:
    """``tiled_tuboids/<series>/<folder>/``: one tuboid folder (``metadata.txt``, ``tuboid.jpg``, ``context.jpg``)."""
    return tuboid_key(f"{series}/{folder_id}/")


def tuboid_day_prefix(device: str, day: date) -> str:
    """Every tuboid series of the device-day, whatever the model version (``<device>.<day start>.``)."""
    return f"{TILED_TUBOIDS}/{device}.{format_datetime(day_start(day))}."


def sim_video_key(device: str, day: date) -> str:
    """``sim_videos/<device>/<device>.<YYYY-MM-DD>.mp4``: the day's frames with numbered tracks."""
    return _device_day(SIM_VIDEOS, device, day) + ".mp4"


def sim_state_key(device: str, day: date) -> str:
    """``sim_state/<device>/<device>.<YYYY-MM-DD>.json``: the tracks open at midnight, which the next day continues."""
    return _device_day(SIM_STATE, device, day) + ".json"


# -- warehouse (tables as Parquet, the source of truth) -------------------------------------------------------


def table_prefix(table: str) -> str:
    return f"{WAREHOUSE}/{table}/"


def partition_parquet_key(table: str, partition: PartitionKey) -> str:
    """``warehouse/<table>/device=<device>/date=<YYYY-MM-DD>/part.parquet``: one partition of a table."""
    return f"{table_prefix(table)}{partition.path}/part.parquet"


def whole_table_key(table: str) -> str:
    """``warehouse/<table>/all.parquet``: a small unpartitioned table written whole (e.g. ``models``)."""
    return f"{table_prefix(table)}all.parquet"


# -- model registry -------------------------------------------------------------------------------------------


def bundle_prefix(bundle: str) -> str:
    """``ml/<bundle>``: everything of one model (``universal-insect-detector``, …)."""
    return f"{MODELS}/{bundle}"


def training_config_key(bundle: str) -> str:
    """``ml/<bundle>/training/config.yaml``: the training configuration users put there (optional)."""
    return f"{bundle_prefix(bundle)}/training/config.yaml"


def versions_prefix(bundle: str) -> str:
    return f"{bundle_prefix(bundle)}/versions/"


def version_prefix(bundle: str, version: str) -> str:
    """``ml/<bundle>/versions/<version>``: one registered version (config, weights, ``registration.json``)."""
    return versions_prefix(bundle) + version


def current_version_key(bundle: str) -> str:
    """``ml/<bundle>/CURRENT.json``: which version the assets use."""
    return f"{bundle_prefix(bundle)}/CURRENT.json"


# -- annotations (what retrains the models) -------------------------------------------------------------------


def annotation_prefix(stage: str) -> str:
    """``annotations/<stage>/``: the annotations a stage trains on (the annotation sensors watch it)."""
    return f"{ANNOTATIONS}/{stage}/"


# -- pre-annotations of the annotation queue (what an annotator corrects) -----------------------------------------


def pre_annotation_svg_key(device: str, stem: str) -> str:
    """``pre_annotations/uid/<device>/<stem>.svg``: the UID's polygons of a queued image (JPEG embedded), ready to
    correct in Inkscape and to put under ``annotations/uid/``."""
    return _device_key(f"{PRE_ANNOTATIONS}/uid", device, f"{stem}.svg")


def pre_annotation_tuboid_prefix(folder_id: str) -> str:
    """``pre_annotations/itc/<folder id>/``: a queued tuboid folder (``metadata.txt``, ``tuboid.jpg``,
    ``context.jpg``) with ``candidates.json``, the ITC's top-k labels to choose from."""
    return f"{PRE_ANNOTATIONS}/itc/{folder_id}/"


# -- synthetic ground truth (``stickypi synth``) -----------------------------------------------------------------


def ground_truth_key(name: str) -> str:
    """``ground_truth/<name>`` (``images.parquet``, ``frames.parquet``, ``tracks.parquet``, ``manifest.json``, …)."""
    return f"{GROUND_TRUTH}/{name}"


def ground_truth_uid_svg_key(device: str, stem: str) -> str:
    """``ground_truth/uid/<device>/<stem>.svg``: the true outlines of one synthetic image."""
    return ground_truth_key(f"uid/{device}/{stem}.svg")
