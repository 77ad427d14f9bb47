"""Dagster resource wrapping the object store and the warehouse (one place configures storage)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import fields
from pathlib import Path

from dagster import ConfigurableResource

from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store, open_warehouse
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse

#: How many differently configured stores a process keeps open (a code server has one; tests have many).
_MAX_SHARED_STORES = 8
_stores: OrderedDict[tuple, ObjectStore] = OrderedDict()
_stores_lock = threading.Lock()


def shared_object_store(settings: Settings) -> ObjectStore:
    """The process's object store for ``settings``: the same instance on every call with the same settings.

    Why: a resource is rebuilt for every sensor tick and every run, and a new store starts with an empty md5 cache,
    so each tick of an annotation sensor hashed every annotation byte again (1.1 s per tick for 553 MB). The
    code server is one long-lived process, so its sensors now hash a file once per change (the cache is keyed by
    path, inode, size and modification time). Stores are thread-safe; S3 clients too.
    """
    key = tuple(
        (f.name, value) for f in fields(settings) if isinstance(value := getattr(settings, f.name), Hashable)
    )
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = open_object_store(settings)
            while len(_stores) > _MAX_SHARED_STORES:
                _stores.popitem(last=False)
        _stores.move_to_end(key)
        return store


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
        """The object store (shared by every resource of this process with the same settings)."""
        return shared_object_store(self.settings())

    def registry(self) -> ModelRegistry:
        """The model registry in this object store (fetched bundles cached under ``<data root>/ml-cache``)."""
        return ModelRegistry.for_settings(self.object_store(), self.settings())

    def warehouse(self) -> Warehouse:
        return open_warehouse(self.settings(), self.object_store())
