"""One settings object, read from the environment: every ``STICKYPI_*`` variable is a field here (README "Settings").

No setting is needed for the embedded default: a local folder holds the object store and the DuckDB
files. Production points ``STICKYPI_STORE_URL`` at an S3 bucket (``s3://bucket/prefix``) and, for
S3-compatible servers (MinIO, Ceph), ``STICKYPI_S3_ENDPOINT_URL``. Credentials come from the usual
AWS variables/profiles through boto3 and are never stored here, logged, or written to metadata.

A malformed value fails when the settings are read, naming the variable and what it expects, rather than
at the first use deep inside a run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_DATA_ROOT = "stickypi-data"
DEFAULT_START_DATE = "2020-01-01"
DEFAULT_AUTO_REFRESH_DAYS = 7
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000  # a Sticky Pi frame is 5 MP; a header claiming more is refused, not decoded
DEFAULT_MAX_OBJECT_BYTES = 256 * 2**20  # no image, SVG or table partition comes near; larger ones are refused
DEFAULT_S3_CONNECT_TIMEOUT = 10.0
DEFAULT_S3_READ_TIMEOUT = 60.0
DEFAULT_S3_MAX_ATTEMPTS = 5
DEFAULT_AL_BUDGET = 20
DEFAULT_AL_PASSES = 10  # maskAL's compromise between cost and a stable certainty
#: The annotation queue's default sampler mixes (grammar: ``stickypi_assets.active.mixes``).
DEFAULT_AL_IMAGE_MIX = "maskal:0.7,diversity:0.2,random:0.1"
DEFAULT_AL_TUBOID_MIX = "drift:0.1,margin:0.4,frame_disagreement:0.2,diversity:0.2,random:0.1"
#: ``STICKYPI_<STAGE>_BUNDLE``: a local bundle a stage's assets use instead of the registry's current version.
BUNDLE_VARIABLE = re.compile(r"^STICKYPI_([A-Z0-9]+)_BUNDLE$")

#: The numeric settings with a lower bound, read the same way: ``(field, default, least value, type, what a value
#: must be)``; the variable of a field is ``STICKYPI_<FIELD>``.
_BOUNDED_NUMBERS: tuple[tuple[str, float, float, type, str], ...] = (
    ("promotion_tolerance", 0, 0, float, "a number >= 0 (how much worse a new model may be)"),
    ("auto_refresh_days", DEFAULT_AUTO_REFRESH_DAYS, 0, int, "a whole number of days >= 0 (0 = never automatic)"),
    ("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS, 1, int, "a whole number of pixels >= 1"),
    ("max_object_bytes", DEFAULT_MAX_OBJECT_BYTES, 1, int, "a whole number of bytes >= 1"),
    ("s3_connect_timeout", DEFAULT_S3_CONNECT_TIMEOUT, 0.001, float, "a number of seconds > 0"),
    ("s3_read_timeout", DEFAULT_S3_READ_TIMEOUT, 0.001, float, "a number of seconds > 0"),
    ("s3_max_attempts", DEFAULT_S3_MAX_ATTEMPTS, 1, int, "a whole number of attempts >= 1"),
    ("retrain_every_n", 1, 1, int, "a whole number of annotated items >= 1 (1 = retrain on every change)"),
    ("al_image_budget", DEFAULT_AL_BUDGET, 0, int, "a whole number of images >= 0 per batch"),
    ("al_tuboid_budget", DEFAULT_AL_BUDGET, 0, int, "a whole number of tuboids >= 0 per batch"),
    ("al_passes", DEFAULT_AL_PASSES, 2, int, "a whole number of MC-dropout passes >= 2"),
)

#: Every variable :meth:`Settings.from_env` reads (``<STAGE>`` stands for each stage of ``ml.stages``).
VARIABLES = (
    "STICKYPI_DATA_ROOT",
    "STICKYPI_STORE_URL",
    "STICKYPI_S3_ENDPOINT_URL",
    "STICKYPI_S3_REGION",
    "STICKYPI_WAREHOUSE_PATH",
    "STICKYPI_PUBLISHED_PATH",
    "STICKYPI_START_DATE",
    "STICKYPI_END_DATE",
    "STICKYPI_<STAGE>_BUNDLE",
    "STICKYPI_PX_PER_MM",
    "STICKYPI_PROMOTION_TOLERANCE",
    "STICKYPI_AUTO_REFRESH_DAYS",
    "STICKYPI_MAX_IMAGE_PIXELS",
    "STICKYPI_MAX_OBJECT_BYTES",
    "STICKYPI_S3_CONNECT_TIMEOUT",
    "STICKYPI_S3_READ_TIMEOUT",
    "STICKYPI_S3_MAX_ATTEMPTS",
    "STICKYPI_RETRAIN_EVERY_N",
    "STICKYPI_AL_IMAGE_BUDGET",
    "STICKYPI_AL_TUBOID_BUDGET",
    "STICKYPI_AL_IMAGE_MIX",
    "STICKYPI_AL_TUBOID_MIX",
    "STICKYPI_AL_PASSES",
)


@dataclass(frozen=True)
class Settings:
    """Where things live and the platform-wide policies.

    * ``data_root``: local folder for the embedded default and for files that must be local (DuckDB).
    * ``store_url``: object store; defaults to ``<data_root>/store`` (a local folder).
    * ``warehouse_path``: the DuckDB file that one writer at a time loads.
    * ``published_path``: the read copy analysts open; a run never waits on it.
    * ``start_date``: first day of the daily partitions (keep devices × days under ~100k).
    * ``end_date``: last day of the daily partitions, for a season that has ended (or the demo's days, so that the
      UI lists only them); unset, the partitions run to yesterday and grow every day.
    """

    data_root: Path
    store_url: str
    warehouse_path: Path
    published_path: Path
    start_date: date
    end_date: date | None = None
    #: Not in ``repr``: an endpoint may carry ``user:pass@`` (the store strips it before botocore sees it).
    s3_endpoint_url: str | None = field(default=None, repr=False)
    s3_region: str | None = None
    #: Image scale for sizes in mm² in view ``captures`` (``STICKYPI_PX_PER_MM``; unset: sizes in px only).
    px_per_mm: float | None = None
    #: How much worse (validation metric) a retrained model may be and still become current.
    promotion_tolerance: float = 0.0
    #: After a model change, re-run this many recent days automatically (0: only by backfill).
    auto_refresh_days: int = DEFAULT_AUTO_REFRESH_DAYS
    #: ``{stage: local bundle}`` from ``STICKYPI_<STAGE>_BUNDLE`` (e.g. ``{"uid": Path(...)}``).
    model_bundles: Mapping[str, Path] = field(default_factory=dict)
    #: Largest image (width x height) decoded; a larger header is recorded as an error, never decoded.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    #: Largest object read whole into memory (images, SVGs, tables); a larger one is refused with its size.
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    #: S3: seconds to connect, seconds to wait for a response, attempts per request (retries are bounded).
    s3_connect_timeout: float = DEFAULT_S3_CONNECT_TIMEOUT
    s3_read_timeout: float = DEFAULT_S3_READ_TIMEOUT
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    #: Retrain a model once this many items (UID/SIM SVGs, ITC tuboid folders) are newer than its training data.
    retrain_every_n: int = 1
    #: The annotation queue: items per batch, the sampler mixes that fill it, MC-dropout passes of the scores.
    al_image_budget: int = DEFAULT_AL_BUDGET
    al_tuboid_budget: int = DEFAULT_AL_BUDGET
    al_image_mix: str = DEFAULT_AL_IMAGE_MIX
    al_tuboid_mix: str = DEFAULT_AL_TUBOID_MIX
    al_passes: int = DEFAULT_AL_PASSES

    @property
    def ml_cache(self) -> Path:
        """Where registry versions are fetched to (one local copy per version)."""
        return self.data_root / "ml-cache"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; ``None`` values keep the current ones (handy for optional overrides)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else default

        def bounded(name: str, default: float, minimum: float, kind: type, expected: str):
            variable = f"STICKYPI_{name.upper()}"
            return _parse(variable, get(variable, str(default)), _at_least(minimum, kind), expected)

        root = Path(get("STICKYPI_DATA_ROOT", DEFAULT_DATA_ROOT) or DEFAULT_DATA_ROOT).expanduser().resolve()
        warehouse = Path(get("STICKYPI_WAREHOUSE_PATH") or root / "warehouse.duckdb").expanduser()
        published = Path(get("STICKYPI_PUBLISHED_PATH") or root / "warehouse_published.duckdb").expanduser()
        return cls(
            data_root=root,
            store_url=get("STICKYPI_STORE_URL") or str(root / "store"),
            warehouse_path=warehouse.resolve(),
            published_path=published.resolve(),
            start_date=_parse("STICKYPI_START_DATE", get("STICKYPI_START_DATE", DEFAULT_START_DATE), date.fromisoformat,
                              "a date (YYYY-MM-DD)"),  # fmt: skip
            end_date=_end_date(get("STICKYPI_END_DATE"), get("STICKYPI_START_DATE", DEFAULT_START_DATE)),
            s3_endpoint_url=get("STICKYPI_S3_ENDPOINT_URL"),
            s3_region=get("STICKYPI_S3_REGION"),
            px_per_mm=_positive("STICKYPI_PX_PER_MM", get("STICKYPI_PX_PER_MM"), "a positive number (pixels per mm)"),
            **{row[0]: bounded(*row) for row in _BOUNDED_NUMBERS},
            al_image_mix=get("STICKYPI_AL_IMAGE_MIX", DEFAULT_AL_IMAGE_MIX) or DEFAULT_AL_IMAGE_MIX,
            al_tuboid_mix=get("STICKYPI_AL_TUBOID_MIX", DEFAULT_AL_TUBOID_MIX) or DEFAULT_AL_TUBOID_MIX,
            model_bundles={
                match.group(1).lower(): Path(value).expanduser()
                for name, value in env.items()
                if value and (match := BUNDLE_VARIABLE.match(name))
            },
        )


def _parse(name: str, text: str | None, convert, expected: str):
    try:
        return convert(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={text!r} must be {expected}") from exc


def _end_date(text: str | None, start: str | None) -> date | None:
    if text is None:
        return None
    end = _parse("STICKYPI_END_DATE", text, date.fromisoformat, "a date (YYYY-MM-DD)")
    if start is not None and end < date.fromisoformat(start):
        raise ValueError(f"STICKYPI_END_DATE={text!r} must not be before STICKYPI_START_DATE={start!r}")
    return end


def _at_least(minimum: float, kind):
    def convert(text: str):
        value = kind(text)
        if not value >= minimum:
            raise ValueError(text)
        return value

    return convert


def _positive(name: str, text: str | None, expected: str) -> float | None:
    if text is None:
        return None
    value = _parse(name, text, float, expected)
    if not value > 0:
        raise ValueError(f"{name}={text!r} must be {expected}")
    return value
