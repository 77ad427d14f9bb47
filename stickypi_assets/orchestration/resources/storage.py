"""Dagster resource wrapping the object store and the warehouse (one place configures storage)."""

from __future__ import annotations

from dagster import ConfigurableResource

from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import ObjectStore, object_store_from_url
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
        return Settings.from_env()

    def object_store(self) -> ObjectStore:
        s = self.settings()
        url = self.store_url or s.store_url
        kwargs = {}
        if url.startswith("s3://"):
            kwargs = {"endpoint_url": self.s3_endpoint_url or s.s3_endpoint_url, "region_name": s.s3_region}
        return object_store_from_url(url, **kwargs)

    def registry(self) -> ModelRegistry:
        """The model registry in this object store (fetched bundles cached under ``<data root>/ml-cache``)."""
        return ModelRegistry(self.object_store(), self.settings().data_root / "ml-cache")

    def warehouse(self) -> Warehouse:
        s = self.settings()
        return Warehouse(
            self.warehouse_path or s.warehouse_path,
            self.object_store(),
            published_path=self.published_path or s.published_path,
            px_per_mm=s.px_per_mm,
        )
