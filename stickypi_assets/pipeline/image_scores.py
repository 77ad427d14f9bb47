"""Score one device-day of images for annotation (no Dagster: used by the ``image_scores`` asset and notebooks).

Input: the day's rows of table ``segmented_images``; only images the UID segmented (``status='ok'``) are scored:
the others are unreadable and their pre-annotation (the UID's SVG) does not exist. Each JPEG is fetched and
decoded, scored by MC dropout of the current UID (:func:`~stickypi_assets.active.scoring.score_images`: a box-only
pass for all, masks for the least certain share), and becomes a row of table ``image_scores``: maskAL certainty and
which pass gave it, the observations and the detections seen in at least half of the passes (their scores and
classes, for Roboflow's samplers), and the backbone embedding for diversity. An image that cannot be fetched or
decoded is a row with ``status='error'``.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd

from stickypi_assets.active.scoring import DEFAULT_MASK_SHARE, PoolImage, score_images
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.ml.uid.predict import decode_jpeg
from stickypi_assets.pipeline.day_rows import DayRows
from stickypi_assets.storage.object_store import ObjectStore


class DayImageScores(DayRows):
    """The rows of one device-day (see the module docstring)."""


def score_image_day(
    store: ObjectStore,
    segmented: pd.DataFrame,
    sampler: McDropoutMaskRCNN,
    model_version: str,
    *,
    device: str,
    day: date,
    mask_share: float = DEFAULT_MASK_SHARE,
    run_id: str | None = None,
) -> DayImageScores:
    """``image_scores`` rows of the day's segmented images (see the module docstring)."""
    t0 = time.perf_counter()
    ok = segmented[segmented["status"] == "ok"].sort_values("datetime") if len(segmented) else segmented
    keys: dict[str, tuple[str, str]] = {}
    pool = []
    for r in ok.itertuples(index=False):
        stem = r.image_key.rsplit("/", 1)[-1].removesuffix(".jpg")
        keys[stem] = (r.image_key, r.svg_key)
        pool.append(PoolImage(stem, device, r.datetime, lambda key=r.image_key: decode_jpeg(store.get_bytes(key))))
    table = score_images(sampler, pool, mask_share=mask_share)
    errors: list[tuple[str, str]] = []
    if len(table):
        table["image_key"] = [keys[item][0] for item in table["item"]]
        table["svg_key"] = [keys[item][1] for item in table["item"]]
        table["date"], table["model_version"], table["run_id"] = day, model_version, run_id
        for column in ("det_scores", "det_labels", "embedding"):  # plain 1-D lists, whatever numpy gave
            if column in table.columns:
                table[column] = [None if v is None or (np.ndim(v) == 0 and pd.isna(v)) else np.ravel(v).tolist()
                                 for v in table[column]]  # fmt: skip
        bad = table[table["status"] != "ok"]
        errors = list(zip(bad["image_key"], bad["error"], strict=True))
    return DayImageScores(rows=table, seconds=time.perf_counter() - t0, errors=errors)
