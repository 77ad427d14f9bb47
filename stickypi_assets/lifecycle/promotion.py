"""Promotion: when a retrained model may replace the current one (no Dagster).

A new version becomes current only if its validation metric (the stage table's ``metric``) is not worse than the
current version's by more than a tolerance (``STICKYPI_PROMOTION_TOLERANCE``, default 0: equal or better), and
"not worse" is decided on the *same* data: new annotations change the validation split, so the current version
is validated again on the candidate's split (its own config and weights, the candidate's ``data/``) and the two
figures are compared, not the candidate's figure with one the current version got on older annotations. If the
current version cannot be validated on the new data (e.g. an incompatible config), the comparison falls back to
its recorded metric and the decision says so.

A metric averaged over classes can still rise while one class is lost, so a candidate is also refused when it
never finds a class (recall 0) that the current version finds on the same validation data
(:func:`lost_classes`; validators that report ``per_class`` rows, the ITC's, take part).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stickypi_assets.ml.bundles import CONFIG_RELPATH, DATA_RELPATH, WEIGHTS_RELPATH
from stickypi_assets.ml.stages import get_stage

if TYPE_CHECKING:
    from stickypi_assets.lifecycle.registry import ModelRegistry

log = logging.getLogger(__name__)


def is_not_worse(candidate: float | None, current: float | None, tolerance: float = 0.0) -> bool:
    """Promotion rule: a candidate without a metric never replaces a current model that has one."""
    if current is None:
        return True
    if candidate is None:
        return False
    return candidate >= current - tolerance


def lost_classes(candidate: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
    """Classes with validation support that the current version finds (recall > 0) and the candidate never does.

    Both metric dicts come from the same validation data; their ``per_class`` rows carry ``name``, ``support``
    and ``recall``. Without rows on either side nothing is lost.
    """
    if not current:
        return []

    def recalls(metrics: dict[str, Any]) -> dict[str, float | None]:
        rows = metrics.get("per_class")
        if not isinstance(rows, list):  # a validator without per-class rows (or with another shape)
            return {}
        return {r["name"]: r.get("recall") for r in rows if isinstance(r, dict) and "name" in r and r.get("support")}

    found_now, found_next = recalls(current), recalls(candidate)
    return sorted(name for name, recall in found_now.items() if recall and name in found_next and not found_next[name])


def current_on_same_data(
    stage: str, registry: ModelRegistry, data_dir: Path, work: Path, device: str
) -> tuple[dict[str, Any] | None, str]:
    """The current version's validation metrics on ``data_dir``'s validation split, and a note for the decision.

    ``(None, why)`` when there is no current version or it cannot be validated on this data.
    """
    spec = get_stage(stage)
    version = registry.current_version(stage)
    if version is None:
        return None, "no current version"
    try:
        current = registry.fetch(stage, version)
        bundle = work / "current-bundle"
        (bundle / CONFIG_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        (bundle / WEIGHTS_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(current / CONFIG_RELPATH, bundle / CONFIG_RELPATH)
        (bundle / WEIGHTS_RELPATH).symlink_to((current / WEIGHTS_RELPATH).resolve())
        (bundle / DATA_RELPATH).symlink_to(data_dir.resolve(), target_is_directory=True)
        metrics = spec.validate(bundle, work / "current-validation", device=device)
    except Exception as exc:  # an old config the new data does not fit: compare with the recorded figure
        log.warning("%s: current version %s could not be validated on the new data: %s", stage, version, exc)
        return None, f"current {version[:8]} not re-validated on the new data ({type(exc).__name__}: {exc})"
    return metrics, f"both on the same {stage} validation data"
