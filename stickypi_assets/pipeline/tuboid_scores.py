"""Score one device-day of tuboids for annotation (no Dagster: used by the ``tuboid_scores`` asset and notebooks).

Input: the day's rows of table ``tuboids``; only rows with a written folder are scored (the others have nothing an
annotator could look at). Each folder is fetched (``metadata.txt`` and ``tuboid.jpg``) and all are scored together
by MC dropout of the current ITC (:func:`~stickypi_assets.active.scoring.tuboid_rows`: entropy, margin, BALD,
least confidence, the disagreement between the tuboid's own frames) and become rows of table ``tuboid_scores``
keyed by folder id, the unit an annotator labels. A folder that cannot be read is a row with ``status='error'``.

Given the day's ``classifications`` rows and the model's registered validation, the drift signals of that model's
predictions on the day (:mod:`stickypi_assets.pipeline.taxon_drift`) become columns ``drift`` and ``drift_reason``
of the folders they point at (the annotation queue's ``drift`` sampler); the other folders have NULL there.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from stickypi_assets.active.mc_dropout import DEFAULT_DROPOUT, DEFAULT_PASSES
from stickypi_assets.active.scoring import tuboid_rows
from stickypi_assets.ml.itc.validate import short_name
from stickypi_assets.pipeline.classifications import fetch_tuboids, top_k_json
from stickypi_assets.pipeline.day_rows import DayRows
from stickypi_assets.pipeline.taxon_drift import drift_asks, taxon_drift
from stickypi_assets.storage.object_store import ObjectStore


class DayTuboidScores(DayRows):
    """The rows of one device-day (see the module docstring)."""


def score_tuboid_day(
    store: ObjectStore,
    tuboids: pd.DataFrame,
    classifier,
    model_version: str,
    *,
    device: str, day: date,  # fmt: skip
    passes: int = DEFAULT_PASSES,
    dropout: float = DEFAULT_DROPOUT,
    seed: int = 0,
    run_id: str | None = None,
    classified: pd.DataFrame | None = None,
    validation: dict[str, Any] | None = None,
) -> DayTuboidScores:
    """``tuboid_scores`` rows of the day's tuboid folders; with the day's ``classified`` rows (table
    ``classifications``) and the model's ``validation`` metrics, their drift columns (see the module docstring)."""
    t0 = time.perf_counter()
    common = {"device": device, "date": day, "model_version": model_version, "run_id": run_id}
    written = tuboids[tuboids["folder_key"].notna()].sort_values("folder_id") if len(tuboids) else tuboids
    folders = [
        (common | {"item": r.folder_id, "tuboid_id": r.tuboid_id, "datetime": r.first_seen,
                   "folder_key": r.folder_key, "n_frames": r.n_frames}, r.folder_key, r.folder_id)
        for r in written.itertuples(index=False)
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="stickypi-al-") as tmp:
        readable, rows, errors = fetch_tuboids(store, folders, Path(tmp), "score")
        scored = tuboid_rows(classifier, [t for _, t in readable], passes=passes, dropout=dropout, seed=seed)
    if len(scored):
        label_map = getattr(classifier, "label_map", None)
        scored = scored.drop(columns=["item", "device", "datetime"])
        scored["status"], scored["error"], scored["n_detections"] = "ok", None, 1
        scored["det_scores"] = [[p] for p in scored["probability"]]
        scored["top_k"] = [top_k_json(p, label_map) for p in scored.pop("probs")]
        bases = pd.DataFrame([base for base, _ in readable])
        ok = pd.concat([bases, scored.reset_index(drop=True)], axis=1)
        rows = ok.to_dict("records") + rows
    out = pd.DataFrame(rows)
    if len(out) and classified is not None and getattr(classifier, "label_map", None) is not None:
        if len(classified) and "model_version" in classified:  # the signals of this model's predictions only
            classified = classified[classified["model_version"] == model_version]
        out = _with_drift(out, classified, validation, classifier.label_map)
    if len(out):
        out = out.sort_values("item", kind="stable").reset_index(drop=True)
    return DayTuboidScores(rows=out, seconds=time.perf_counter() - t0, errors=errors)


def _with_drift(
    rows: pd.DataFrame, classified: pd.DataFrame, validation: dict[str, Any] | None, label_map
) -> pd.DataFrame:
    """``rows`` with the columns ``drift``/``drift_reason`` of the day's drift signals (NULL where none points)."""
    names = [short_name(label_map, k) for k in range(label_map.n_classes)]
    asks = drift_asks(classified, taxon_drift(classified, validation), names).set_index("folder_id")
    rows = rows.copy()
    rows["drift"] = rows["item"].map(asks["drift"]).astype(float)
    rows["drift_reason"] = rows["item"].map(asks["drift_reason"])
    return rows
