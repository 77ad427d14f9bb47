"""Dagster resource wrapping the object store and the warehouse (one place configures storage)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store, open_warehouse
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse


class StickyPiStorage(ConfigurableResource):
    """Object store + DuckDB warehouse. Unset fields come from the environment (``Settings``).

    Credentials are not fields: boto3 reads them from the environment/profile, so they never appear in
    run configuration or the event log.
    """

    store_url: str | None = None
    warehouse_path: str | None = None
    published_path: str | None = None
    s3_endpoint_url: str | None = None

    def settings(self) -> Settings:
        """The environment's settings with this resource's fields in place of theirs."""
        return Settings.from_env().replace(
            store_url=self.store_url,
            warehouse_path=Path(self.warehouse_path) if self.warehouse_path else None,
            published_path=Path(self.published_path) if self.published_path else None,
            s3_endpoint_url=self.s3_endpoint_url,
        )

    def object_store(self) -> ObjectStore:
        return open_object_store(self.settings())

    def registry(self) -> ModelRegistry:
        """The model registry in this object store (fetched bundles cached under ``<data root>/ml-cache``)."""
        return ModelRegistry.for_settings(self.object_store(), self.settings())

    def warehouse(self) -> Warehouse:
        return open_warehouse(self.settings())
