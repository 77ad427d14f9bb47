"""Dagster resource giving assets the current UID model (bundle directory, loaded once per run)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from stickypi_assets.settings import Settings

UID_BUNDLE_ENV = "STICKYPI_UID_BUNDLE"


class UidModelResource(ConfigurableResource):
    """The UID bundle to segment with: ``bundle_dir``, else ``$STICKYPI_UID_BUNDLE``, else
    ``<data root>/ml/universal-insect-detector`` (where ``stickypi uid train`` and the demo put it).

    ``device`` is ``cpu`` or ``cuda``; the weights' md5 is the model version recorded on every row.
    """

    bundle_dir: str | None = None
    device: str = "cpu"

    def resolved_bundle_dir(self) -> Path:
        if self.bundle_dir:
            return Path(self.bundle_dir)
        if os.environ.get(UID_BUNDLE_ENV):
            return Path(os.environ[UID_BUNDLE_ENV])
        return Settings.from_env().data_root / "ml" / "universal-insect-detector"

    def load(self) -> tuple[Any, Any, str]:
        """(detector, config, version), cached per process while the weights file is unchanged.

        Raises ``FileNotFoundError`` saying what to do when the bundle has no trained weights.
        """
        bundle = self.resolved_bundle_dir().resolve()
        weights = bundle / "output" / "model_final.pth"
        stamp = (weights.stat().st_mtime_ns, weights.stat().st_size) if weights.exists() else None
        return _load(str(bundle), self.device, stamp)


@lru_cache(maxsize=4)
def _load(bundle: str, device: str, stamp: tuple[int, int] | None) -> tuple[Any, Any, str]:
    from stickypi_assets.ml.uid.predict import load_detector

    try:
        detector, config, version = load_detector(bundle, device=device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no trained UID model in {bundle} ({exc}); train one with "
            f"`stickypi uid train --bundle-dir {bundle}` or set {UID_BUNDLE_ENV}"
        ) from exc
    detector.eval()
    return detector, config, version
