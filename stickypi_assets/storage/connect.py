"""The platform's storage from the settings, without Dagster: what the CLI, notebooks and the resources open.

One place turns :class:`~stickypi_assets.settings.Settings` into an object store and a warehouse, so the Dagster
resource (:class:`~stickypi_assets.orchestration.resources.StickyPiStorage`), the ``stickypi`` command and a
notebook all reach the same bucket and files.
"""

from __future__ import annotations

from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import ObjectStore, object_store_from_url
from stickypi_assets.storage.warehouse import Warehouse


def open_object_store(settings: Settings, url: str | None = None) -> ObjectStore:
    """The object store at ``url`` (default ``settings.store_url``): a folder, ``file://`` or ``s3://``.

    Every store is built here, so each one gets the same policies: the S3 endpoint, region, timeouts and
    attempts of the settings (a store opened elsewhere would wait minutes on a silent server), and
    ``max_object_bytes`` on both backends. ``url`` is for commands that write elsewhere than the platform's
    store (``stickypi synth --out``) but must still reach the same S3 server the same way.
    """
    return object_store_from_url(
        settings.store_url if url is None else url,
        max_object_bytes=settings.max_object_bytes,
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        max_attempts=settings.s3_max_attempts,
    )


def open_warehouse(settings: Settings, store: ObjectStore | None = None) -> Warehouse:
    """The DuckDB warehouse of ``settings`` over ``store`` (default: :func:`open_object_store`)."""
    return Warehouse(
        settings.warehouse_path,
        store if store is not None else open_object_store(settings),
        published_path=settings.published_path,
        px_per_mm=settings.px_per_mm,
    )
