"""One settings object, read from the environment (documented in the README).

No setting is needed for the embedded default: a local folder holds the object store and the DuckDB
files. Production points ``STICKYPI_STORE_URL`` at an S3 bucket (``s3://bucket/prefix``) and, for
S3-compatible servers (MinIO, Ceph), ``STICKYPI_S3_ENDPOINT_URL``. Credentials come from the usual
AWS variables/profiles through boto3 and are never stored here, logged, or written to metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

DEFAULT_DATA_ROOT = "stickypi-data"
DEFAULT_START_DATE = "2020-01-01"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Where things live.

    * ``data_root``: local folder for the embedded default and for files that must be local (DuckDB).
    * ``store_url``: object store; defaults to ``<data_root>/store`` (a local folder).
    * ``warehouse_path``: the DuckDB file that one writer at a time loads.
    * ``published_path``: the read copy analysts open; a run never waits on it.
    * ``start_date``: first day of the daily partitions (keep devices × days under ~100k).
    """

    data_root: Path
    store_url: str
    warehouse_path: Path
    published_path: Path
    start_date: date
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    #: Image scale for sizes in mm² in view ``captures`` (``STICKYPI_PX_PER_MM``; unset: sizes in px only).
    px_per_mm: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        root = Path(_env("STICKYPI_DATA_ROOT", DEFAULT_DATA_ROOT) or DEFAULT_DATA_ROOT).expanduser().resolve()
        store_url = _env("STICKYPI_STORE_URL", str(root / "store")) or str(root / "store")
        warehouse = Path(_env("STICKYPI_WAREHOUSE_PATH", str(root / "warehouse.duckdb")) or "").expanduser()
        published = Path(
            _env("STICKYPI_PUBLISHED_PATH", str(root / "warehouse_published.duckdb")) or ""
        ).expanduser()
        start_text = _env("STICKYPI_START_DATE", DEFAULT_START_DATE) or DEFAULT_START_DATE
        try:
            start = date.fromisoformat(start_text)
        except ValueError as exc:
            raise ValueError(f"STICKYPI_START_DATE={start_text!r} is not a date (YYYY-MM-DD)") from exc
        return cls(
            data_root=root,
            store_url=store_url,
            warehouse_path=warehouse.resolve(),
            published_path=published.resolve(),
            start_date=start,
            s3_endpoint_url=_env("STICKYPI_S3_ENDPOINT_URL"),
            s3_region=_env("STICKYPI_S3_REGION"),
            px_per_mm=_px_per_mm(_env("STICKYPI_PX_PER_MM")),
        )


def _px_per_mm(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"STICKYPI_PX_PER_MM={text!r} is not a positive number (pixels per millimetre)")
    return value
