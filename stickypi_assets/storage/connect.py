"""The platform's storage from the settings, without Dagster: what the CLI, notebooks and the resources open.

One place turns :class:`~stickypi_assets.settings.Settings` into an object store and a warehouse, so the Dagster
resource (:class:`~stickypi_assets.orchestration.resources.StickyPiStorage`), the ``stickypi`` command and a
notebook all reach the same bucket and files.
"""

from __future__ import annotations

from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import ObjectStore, object_store_from_url
from stickypi_assets.storage.warehouse import Warehouse


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store at ``settings.store_url`` (a folder, ``file://`` or ``s3://``; S3 settings apply to S3)."""
    return object_store_from_url(
        settings.store_url, endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region
    )


def open_warehouse(settings: Settings, store: ObjectStore | None = None) -> Warehouse:
    """The DuckDB warehouse of ``settings`` over ``store`` (default: :func:`open_object_store`)."""
    return Warehouse(
        settings.warehouse_path,
        store if store is not None else open_object_store(settings),
        published_path=settings.published_path,
        px_per_mm=settings.px_per_mm,
    )
