"""Model registry: every trained model is a versioned bundle in the object store (no Dagster).

Layout, for each stage's bundle name in the stage table (``universal-insect-detector``, ``siamese-insect-matcher``,
``insect-tuboid-classifier``; keys built by :mod:`stickypi_assets.storage.keys`)::

    ml/<bundle>/training/config.yaml          the training configuration users put there (optional)
    ml/<bundle>/versions/<version>/config/config.yaml
    ml/<bundle>/versions/<version>/output/model_final.pth
    ml/<bundle>/versions/<version>/registration.json   metrics, training-data manifest, decision, time
    ml/<bundle>/CURRENT.json                  {"version": ...}: what the assets use

``version`` is the md5 of the weights file, the ``model_version`` recorded on every output row. A new
version becomes current only if its validation metric (the stage table's ``metric``: UID: F1 of precision/recall
at the bundle's match IoU; SIM: ROC AUC; ITC: accuracy) is not worse than the current one's by more than ``tolerance``
(``STICKYPI_PROMOTION_TOLERANCE``, default 0: equal or better). Everything is written object by object with
``CURRENT.json`` last, so a crash leaves either the old or the new current version, never half of one.

Whoever can write to the store can write these objects, so nothing read back is trusted as a path: every version
(``CURRENT.json``, a version folder, a registration, a caller's argument) must be an md5 id (32 lowercase hex
digits, :func:`stickypi_assets.ml.checkpoints.check_version`), else it is an error (or, in a listing, skipped with a
warning); :meth:`ModelRegistry.fetch` returns a folder only after its weights' md5 equals the version, cached or
not; and the weights are loaded weights-only (:mod:`stickypi_assets.ml.checkpoints`), so a file whose md5 its
writer chose still cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from stickypi_assets.lifecycle.promotion import is_not_worse, lost_classes
from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH, weights_version
from stickypi_assets.ml.checkpoints import CheckpointVersionError, InvalidVersion, check_version
from stickypi_assets.ml.stages import STAGES, get_stage
from stickypi_assets.settings import Settings
from stickypi_assets.storage.keys import current_version_key, version_prefix, versions_prefix
from stickypi_assets.storage.object_store import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

def data_fingerprint(manifest: list[dict[str, Any]]) -> str:
    """Hash of a training-data manifest (sorted ``key``/``md5`` pairs): same annotations, same fingerprint."""
    text = "\n".join(f"{m['key']}\t{m['md5']}" for m in sorted(manifest, key=lambda m: m["key"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Registration:
    stage: str
    version: str
    created_at: str
    metric_name: str
    metric_value: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    data_manifest: list[dict[str, Any]] = field(default_factory=list)
    decision: str = ""
    parent_version: str | None = None

    @property
    def prefix(self) -> str:
        return version_prefix(get_stage(self.stage).bundle_name, self.version)


class ModelRegistry:
    """Register, list, promote and fetch model versions; ``cache_root`` holds fetched bundles locally."""

    def __init__(self, store: ObjectStore, cache_root: str | Path) -> None:
        self.store = store
        self.cache_root = Path(cache_root)

    @classmethod
    def for_settings(cls, store: ObjectStore, settings: Settings) -> ModelRegistry:
        """The registry in ``store``, fetching versions into the settings' ``ml-cache`` folder."""
        return cls(store, settings.ml_cache)

    # -- reading ----------------------------------------------------------------------------------------

    def versions(self, stage: str) -> list[Registration]:
        """Every registration of ``stage``, oldest first.

        A registration whose version is not an md5 id, or not its folder's name, is skipped with a warning: one
        bad object in the store must not hide the good versions (nor become a path or key here).
        """
        prefix = versions_prefix(get_stage(stage).bundle_name)
        out = []
        for info in self.store.list(prefix):
            if not info.key.endswith("/registration.json"):
                continue
            folder = info.key[len(prefix):].removesuffix("/registration.json")
            try:
                record = Registration(**json.loads(self.store.get_bytes(info.key)))
                check_version(folder, f"{info.key}: version folder")
                if record.version != folder:
                    raise InvalidVersion(f"{info.key}: version {record.version!r} is not its folder's name")
            except (ValueError, TypeError) as exc:  # bad JSON, unknown fields, bad version
                log.warning("skipped registration %s: %s", info.key, exc)
                continue
            out.append(record)
        return sorted(out, key=lambda r: (r.created_at, r.version))

    def current_version(self, stage: str) -> str | None:
        """The version ``CURRENT.json`` names (``None`` without one); :class:`InvalidVersion` if not an md5 id."""
        key = current_version_key(get_stage(stage).bundle_name)
        try:
            data = json.loads(self.store.get_bytes(key))
        except ObjectNotFound:
            return None
        except ValueError as exc:
            raise InvalidVersion(f"{key}: not a JSON object with a 'version' ({exc})") from exc
        if not isinstance(data, dict) or "version" not in data:
            raise InvalidVersion(f"{key}: not a JSON object with a 'version'")
        return check_version(data["version"], key)

    def current(self, stage: str) -> Registration | None:
        version = self.current_version(stage)
        if version is None:
            return None
        key = f"{version_prefix(get_stage(stage).bundle_name, version)}/registration.json"
        record = Registration(**json.loads(self.store.get_bytes(key)))
        if record.version != version:
            raise InvalidVersion(f"{key}: version {record.version!r} is not {version}")
        return record

    def fetch(self, stage: str, version: str | None = None) -> Path:
        """A local bundle directory (``config/`` + ``output/model_final.pth``) of ``version`` (default: current).

        ``version`` must be an md5 id (:class:`InvalidVersion` otherwise, before it touches a path or key), and the
        folder is returned only once its weights' md5 equals it, also when cached: a cached file that changed is
        fetched again, a downloaded one that differs is an error.
        """
        bundle = get_stage(stage).bundle_name
        if version is None:
            version = self.current_version(stage)  # checked there
            if version is None:
                raise FileNotFoundError(f"no current {stage.upper()} model in the registry "
                                        f"({current_version_key(bundle)})")  # fmt: skip
        check_version(version, f"{stage} version")  # never a path component such as "..", never an absolute path
        local = self.cache_root / bundle / version
        weights = local / WEIGHTS_RELPATH
        if weights.is_file() and weights_version(weights) != version:
            log.warning("%s: cached weights are not version %s any more: fetching them again", local, version)
            shutil.rmtree(local, ignore_errors=True)
        if not weights.is_file():
            prefix = version_prefix(bundle, version)
            tmp = local.with_name(f".{version}.partial")
            shutil.rmtree(tmp, ignore_errors=True)
            for rel in (CONFIG_RELPATH, WEIGHTS_RELPATH):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                self.store.download(f"{prefix}/{rel.as_posix()}", tmp / rel)
            if weights_version(tmp / WEIGHTS_RELPATH) != version:
                shutil.rmtree(tmp, ignore_errors=True)
                raise CheckpointVersionError(f"{prefix}: the weights' md5 is not {version} (corrupt or altered upload)")
            shutil.rmtree(local, ignore_errors=True)
            tmp.rename(local)
        return local

    # -- writing ----------------------------------------------------------------------------------------

    def register(
        self,
        stage: str,
        bundle_dir: str | Path,
        metrics: dict[str, Any],
        data_manifest: list[dict[str, Any]],
        *,
        tolerance: float = 0.0,
        current_metric: float | None = None,
        current_metrics: dict[str, Any] | None = None,
        note: str = "",
    ) -> tuple[Registration, bool]:
        """Upload a trained bundle as a version; make it current if it is not worse. Returns (record, promoted).

        ``current_metric`` is the current version's metric measured on the candidate's validation data (see
        :func:`stickypi_assets.lifecycle.promotion.current_on_same_data`); without it the current version's
        recorded metric is used. ``note`` says which, in the decision. ``current_metrics``, all the current
        version's metrics on that data, lets promotion refuse a candidate that loses a class
        (:func:`~stickypi_assets.lifecycle.promotion.lost_classes`).
        """
        bundle_dir = Path(bundle_dir)
        version = weights_version(bundle_dir / WEIGHTS_RELPATH)
        metric_name = get_stage(stage).metric
        value = metrics.get(metric_name)
        current = self.current(stage)
        if current is not None and current.version == version:
            return current, False
        reference = current_metric if current_metric is not None else (current.metric_value if current else None)
        lost = lost_classes(metrics, current_metrics) if current is not None else []
        promoted = is_not_worse(value, reference, tolerance) and not lost
        if current is None:
            decision = "first version: current"
        else:
            verb = "made current" if promoted else "kept as a candidate"
            basis = note or ("on the same validation data" if current_metric is not None else "recorded metric")
            decision = (f"{verb}: {metric_name} {value} vs current {current.version[:8]} "
                        f"{reference} ({basis}; tolerance {tolerance})")  # fmt: skip
            if lost:
                decision += f"; it never finds {', '.join(lost)}, which the current version finds"
        record = Registration(
            stage=stage, version=version, created_at=datetime.now(UTC).isoformat(), metric_name=metric_name,
            metric_value=None if value is None else float(value), metrics=metrics, data_manifest=data_manifest,
            decision=decision, parent_version=current.version if current else None,
        )  # fmt: skip
        for rel in (CONFIG_RELPATH, WEIGHTS_RELPATH):
            self.store.put_file(f"{record.prefix}/{rel.as_posix()}", bundle_dir / rel)
        self.store.put_bytes(f"{record.prefix}/registration.json", json.dumps(asdict(record), indent=1).encode(),
                             content_type="application/json")  # fmt: skip
        if promoted:
            self.promote(stage, version)
        log.info("%s model %s registered: %s", stage, version, decision)
        return record, promoted

    def promote(self, stage: str, version: str) -> None:
        """Make ``version`` current (also the manual override: roll back, or force a candidate)."""
        bundle = get_stage(stage).bundle_name
        check_version(version, f"{stage} version")
        if not self.store.exists(f"{version_prefix(bundle, version)}/registration.json"):
            raise ValueError(f"{stage} version {version} is not registered")
        self.store.put_bytes(current_version_key(bundle), json.dumps({"version": version}).encode(),
                             content_type="application/json")  # fmt: skip

    # -- table ------------------------------------------------------------------------------------------

    def table_rows(self) -> pd.DataFrame:
        """Rows of table ``models``: every version of every stage."""
        rows = []
        for stage in STAGES.values():
            current = self.current_version(stage.name)
            for r in self.versions(stage.name):
                rows.append({
                    "stage": stage.name, "bundle": stage.bundle_name, "version": r.version,
                    "created_at": pd.Timestamp(r.created_at), "metric_name": r.metric_name,
                    "metric_value": r.metric_value, "metrics_json": json.dumps(r.metrics, default=str),
                    "n_training_files": len(r.data_manifest), "data_fingerprint": data_fingerprint(r.data_manifest),
                    "is_current": r.version == current, "decision": r.decision, "object_prefix": r.prefix,
                })  # fmt: skip
        return pd.DataFrame(rows)
