"""Dagster resource giving an asset the current model of a stage (a bundle directory, loaded once per process).

One class for every stage of the stage table (:mod:`stickypi_assets.ml.stages`), configured with the stage's
name; :mod:`stickypi_assets.definitions` makes one per stage, keyed ``<stage>_model``. The bundle is
``bundle_dir``, else ``STICKYPI_<STAGE>_BUNDLE``, else the current version in the model registry
(:mod:`stickypi_assets.lifecycle.registry`, fetched once into ``<data root>/ml-cache``), else
``<data root>/ml/<bundle name>`` (where ``stickypi <stage> train`` puts it). ``device`` is resolved by
:func:`stickypi_assets.ml.devices.resolve_device`. The weights' md5 is the model version every output row
records. A loaded model is cached per process while its weights file is unchanged, so the many partitions of a
range run load it once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.devices import DEVICE_HELP, resolve_device
from stickypi_assets.ml.stages import get_stage
from stickypi_assets.orchestration.resources.storage import StickyPiStorage


class ModelResource(ConfigurableResource):
    """The model of one stage (``uid``, ``sim``, ``itc``) that an asset predicts with."""

    stage: str = Field(description="stage of the stage table whose model this is (uid, sim, itc)")
    bundle_dir: str | None = Field(default=None, description="a local bundle to use instead of the registry's")
    device: str = Field(default="cpu", description=DEVICE_HELP)
    #: Object store holding the model registry (default: the platform's, from the settings).
    store_url: str | None = Field(default=None, description="object store of the registry (default: the settings')")

    def resolved_bundle_dir(self) -> Path:
        """``bundle_dir``, else the stage's variable, else the registry's current version, else the local bundle."""
        spec = get_stage(self.stage)
        if self.bundle_dir:
            return Path(self.bundle_dir)
        storage = StickyPiStorage(store_url=self.store_url)
        settings = storage.settings()
        if self.stage in settings.model_bundles:
            return settings.model_bundles[self.stage]
        registry = storage.registry()
        if registry.current_version(self.stage):
            return registry.fetch(self.stage)
        return settings.data_root / "ml" / spec.bundle_name

    def load(self) -> tuple[Any, Any, str]:
        """``(model, config, version)``; raises ``FileNotFoundError`` saying what to do when untrained."""
        bundle = self.resolved_bundle_dir().resolve()
        weights = bundle / WEIGHTS_RELPATH
        stamp = (weights.stat().st_mtime_ns, weights.stat().st_size) if weights.exists() else None
        return _load(self.stage, str(bundle), resolve_device(self.device), stamp)


@lru_cache(maxsize=8)
def _load(stage: str, bundle: str, device: str, stamp: tuple[int, int] | None) -> tuple[Any, Any, str]:
    spec = get_stage(stage)
    try:
        model, config, version = spec.load(bundle, device=device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no trained {spec.title} model in {bundle} ({exc}); train one with "
            f"`stickypi {stage} train --bundle-dir {bundle}` or set {spec.bundle_variable}"
        ) from exc
    if hasattr(model, "eval"):
        model.eval()
    return model, config, version
