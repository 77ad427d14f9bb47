"""What the ``stickypi`` sub-commands share: the ``--gpu`` flag and the platform's storage from the settings.

No Dagster here: the commands that only read or write the store, the warehouse or the registry open them from
:class:`~stickypi_assets.settings.Settings` directly (:mod:`stickypi_assets.storage.connect`).
"""

from __future__ import annotations

import argparse

from stickypi_assets.ml.devices import gpu_flag_device
from stickypi_assets.settings import Settings
from stickypi_assets.storage.connect import open_object_store, open_warehouse
from stickypi_assets.storage.object_store import ObjectStore
from stickypi_assets.storage.warehouse import Warehouse


def add_gpu_flag(parser: argparse.ArgumentParser, what: str = "run") -> None:
    parser.add_argument("-g", "--gpu", action="store_true", help=f"{what} on CUDA (an error if there is none)")


def device(args: argparse.Namespace) -> str:
    """The torch device of a command's ``--gpu`` flag."""
    return gpu_flag_device(getattr(args, "gpu", False))


def object_store() -> ObjectStore:
    return open_object_store(Settings.from_env())


def warehouse() -> Warehouse:
    return open_warehouse(Settings.from_env())


def registry():
    """The model registry in the platform's object store (versions fetched into ``<data root>/ml-cache``)."""
    from stickypi_assets.lifecycle.registry import ModelRegistry

    settings = Settings.from_env()
    return ModelRegistry.for_settings(open_object_store(settings), settings)
