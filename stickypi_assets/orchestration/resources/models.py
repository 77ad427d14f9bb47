"""Dagster resources giving assets the current model of each stage (a bundle directory, loaded once per run).

One class per stage (:class:`UidModelResource`, :class:`SimModelResource`, :class:`ItcModelResource`) over
one implementation: the bundle is ``bundle_dir``, else the stage's environment variable, else the current
version in the model registry (:mod:`stickypi_assets.lifecycle.registry`, fetched once into ``<data root>/ml-cache``),
else ``<data root>/ml/<bundle name>`` (where ``stickypi <stage> train`` puts it). ``device`` is
``cpu`` or ``cuda``. The weights' md5 is the model version every output row records. A loaded model is
cached per process while its weights file is unchanged, so the many partitions of a range run load it once.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from dagster import ConfigurableResource

from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.orchestration.resources.storage import StickyPiStorage
from stickypi_assets.settings import Settings

UID_BUNDLE_ENV = "STICKYPI_UID_BUNDLE"
SIM_BUNDLE_ENV = "STICKYPI_SIM_BUNDLE"
ITC_BUNDLE_ENV = "STICKYPI_ITC_BUNDLE"


class ModelBundleResource(ConfigurableResource):
    """Base of the per-stage model resources (subclasses set the four class variables)."""

    bundle_dir: str | None = None
    device: str = "cpu"
    #: Object store holding the model registry (default: the platform's, from the settings).
    store_url: str | None = None

    stage: ClassVar[str] = ""
    env_var: ClassVar[str] = ""
    bundle_name: ClassVar[str] = ""
    #: ``"module:function"`` returning ``(model, config, version)`` for ``(bundle_dir, device=...)``.
    loader: ClassVar[str] = ""

    def resolved_bundle_dir(self) -> Path:
        """``bundle_dir``, else the stage's variable, else the registry's current version, else the local bundle."""
        if self.bundle_dir:
            return Path(self.bundle_dir)
        if os.environ.get(self.env_var):
            return Path(os.environ[self.env_var])
        registry = StickyPiStorage(store_url=self.store_url).registry()
        if registry.current_version(self.stage):
            return registry.fetch(self.stage)
        return Settings.from_env().data_root / "ml" / self.bundle_name

    def load(self) -> tuple[Any, Any, str]:
        """``(model, config, version)``; raises ``FileNotFoundError`` saying what to do when untrained."""
        bundle = self.resolved_bundle_dir().resolve()
        weights = bundle / WEIGHTS_RELPATH
        stamp = (weights.stat().st_mtime_ns, weights.stat().st_size) if weights.exists() else None
        return _load(self.loader, self.stage, self.env_var, str(bundle), self.device, stamp)


@lru_cache(maxsize=8)
def _load(
    loader: str, stage: str, env_var: str, bundle: str, device: str, stamp: tuple[int, int] | None
) -> tuple[Any, Any, str]:
    module, function = loader.split(":")
    load = getattr(importlib.import_module(module), function)
    try:
        model, config, version = load(bundle, device=device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no trained {stage.upper()} model in {bundle} ({exc}); train one with "
            f"`stickypi {stage} train --bundle-dir {bundle}` or set {env_var}"
        ) from exc
    if hasattr(model, "eval"):
        model.eval()
    return model, config, version


class UidModelResource(ModelBundleResource):
    """The UID bundle to segment with (``$STICKYPI_UID_BUNDLE``, default ``<root>/ml/universal-insect-detector``)."""

    stage: ClassVar[str] = "uid"
    env_var: ClassVar[str] = UID_BUNDLE_ENV
    bundle_name: ClassVar[str] = "universal-insect-detector"
    loader: ClassVar[str] = "stickypi_assets.ml.uid.predict:load_detector"


class SimModelResource(ModelBundleResource):
    """The SIM bundle to track with (``$STICKYPI_SIM_BUNDLE``, default ``<root>/ml/siamese-insect-matcher``)."""

    stage: ClassVar[str] = "sim"
    env_var: ClassVar[str] = SIM_BUNDLE_ENV
    bundle_name: ClassVar[str] = "siamese-insect-matcher"
    loader: ClassVar[str] = "stickypi_assets.ml.sim.predict:load_matcher"


class ItcModelResource(ModelBundleResource):
    """The ITC bundle to classify with (``$STICKYPI_ITC_BUNDLE``, default ``<root>/ml/insect-tuboid-classifier``)."""

    stage: ClassVar[str] = "itc"
    env_var: ClassVar[str] = ITC_BUNDLE_ENV
    bundle_name: ClassVar[str] = "insect-tuboid-classifier"
    loader: ClassVar[str] = "stickypi_assets.ml.itc.predict:load_classifier"
