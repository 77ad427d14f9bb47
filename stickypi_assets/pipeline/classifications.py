"""Run the ITC on one device-day of tuboids (no Dagster: used by the asset and usable from notebooks).

Input: the day's rows of table ``tuboids``. Each row whose folder was written (``folder_key``) is read
from the object store (``metadata.txt`` and ``tuboid.jpg`` only: the classifier needs the tiles, not the
context image) and all of them are classified in batches by
:class:`~stickypi_assets.ml.itc.predict.ItcClassifier` (deterministic shots, so a re-run gives the same
probabilities). Output: one row of table ``classifications`` per tuboid row, including the ones that could
not be classified (no folder today: ``not_classified``; unreadable folder: ``error``), so the asset check
"every tuboid has one classification" holds by construction and nothing disappears silently.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from stickypi_assets.formats.tuboids import METADATA_FILENAME, TUBOID_FILENAME, Tuboid, read_tuboid
from stickypi_assets.pipeline.day_rows import DayRows
from stickypi_assets.storage.object_store import ObjectStore

log = logging.getLogger(__name__)

TOP_K = 3


class DayClassifications(DayRows):
    """The rows of one device-day (see the module docstring)."""


def top_k_json(probs: np.ndarray, label_map) -> str:
    """JSON ``[{label, pattern, p}]`` of the :data:`TOP_K` most probable labels (column ``top_k``)."""
    top = np.argsort(-np.asarray(probs, dtype=float), kind="stable")[:TOP_K]
    return json.dumps([{"label": int(k), "pattern": label_map.pattern_for(int(k)) if label_map else None,
                        "p": round(float(probs[k]), 6)} for k in top])  # fmt: skip


def fetch_tuboid(store: ObjectStore, folder_key: str, folder_id: str, tmp: Path) -> Tuboid:
    directory = tmp / folder_id
    directory.mkdir(parents=True, exist_ok=True)
    for name in (METADATA_FILENAME, TUBOID_FILENAME):
        store.download(f"{folder_key.rstrip('/')}/{name}", directory / name)  # streamed: a tuboid JPEG may be big
    return read_tuboid(directory)


def fetch_tuboids(
    store: ObjectStore, folders: Iterable[tuple[dict, str, str]], tmp: Path, doing: str
) -> tuple[list[tuple[dict, Tuboid]], list[dict], list[tuple[str, str]]]:
    """Fetch each ``(row, folder_key, folder_id)`` into ``tmp``: ``(readable (row, tuboid) pairs, the rows of the
    unreadable ones with status 'error' and the message, (folder key, message) problems)``. One bad folder never
    kills the day; ``doing`` names the work in the log line ("classify", "score")."""
    readable, failed, errors = [], [], []
    for row, folder_key, folder_id in folders:
        try:
            readable.append((row, fetch_tuboid(store, folder_key, folder_id, tmp)))
        except Exception as exc:  # one bad folder never kills the day
            message = f"{type(exc).__name__}: {exc}"
            log.warning("cannot %s %s: %s", doing, folder_key, message)
            errors.append((folder_key, message))
            failed.append(row | {"status": "error", "error": message})
    return readable, failed, errors


def classify_device_day(
    store: ObjectStore,
    tuboids: pd.DataFrame,
    classifier,
    model_version: str,
    *,
    device: str, day: date,  # fmt: skip
    run_id: str | None = None,
) -> DayClassifications:
    """Classify the day's tuboid folders; ``classifier`` is an :class:`ItcClassifier` (or has ``classify``)."""
    t0 = time.perf_counter()
    common = {"device": device, "date": day, "model_version": model_version, "run_id": run_id}
    rows: list[dict] = []
    folders: list[tuple[dict, str, str]] = []
    for r in tuboids.sort_values("tuboid_id").itertuples(index=False) if len(tuboids) else ():
        base = common | {"tuboid_id": r.tuboid_id, "folder_id": r.folder_id, "n_frames": r.n_frames}
        if r.folder_key is None or pd.isna(r.folder_key):
            rows.append(base | {"status": "not_classified", "error": r.not_written_reason or "no tuboid folder"})
        else:
            folders.append((base, r.folder_key, r.folder_id))
    with tempfile.TemporaryDirectory(prefix="stickypi-itc-") as tmp:
        readable, failed, errors = fetch_tuboids(store, folders, Path(tmp), "classify")
        rows += failed
        results = classifier.classify([t for _, t in readable]) if readable else []
    label_map = getattr(classifier, "label_map", None)
    for (base, _), c in zip(readable, results, strict=True):
        probs = np.asarray(c.probabilities, dtype=float)
        rows.append(base | {
            "status": "ok", "error": None, "label": c.label, "pattern": c.pattern, "type": c.type,
            "order": c.order, "family": c.family, "genus": c.genus, "species": c.species,
            "probability": float(c.probability), "top_k": top_k_json(probs, label_map),
            "probabilities": json.dumps([round(float(p), 6) for p in probs]),
        })  # fmt: skip
    out = pd.DataFrame(rows)
    if len(out):
        out = out.sort_values("tuboid_id", kind="stable").reset_index(drop=True)
    return DayClassifications(rows=out, seconds=time.perf_counter() - t0, errors=errors)
