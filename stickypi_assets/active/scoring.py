"""Score rows: what the samplers read about each image and tuboid (the rows of ``image_scores`` and ``tuboid_scores``).

Images are scored in two steps, as the cost allows: a **box-only** MC-dropout pass over the whole pool (backbone
and RPN once per tile, the box head ``T`` times) gives every image a maskAL certainty from its box and class terms,
then the ``mask_share`` least certain of them are scored again **with masks** (the full maskAL certainty, spatial
term from the mask IoUs). The column ``maskal_pass`` says which an image got. A row also carries what Roboflow's
samplers need: the scores and classes of the image's *observations* seen in at least half of the passes (what the
model would report), and the embedding for diversity.

An image that cannot be read is a row with ``status = 'error'`` and the message, never a lost pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from stickypi_assets.active.certainty import DEFAULT_EMPTY_CERTAINTY, ImageCertainty
from stickypi_assets.active.itc_mc import sample_tuboids
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.active.uncertainty import all_scores, vote_disagreement
from stickypi_assets.storage.object_store import ObjectStoreError

log = logging.getLogger(__name__)

#: Share of a pool scored again with masks after the box-only pass.
DEFAULT_MASK_SHARE = 0.2


@dataclass(frozen=True)
class PoolImage:
    """An image of the pool: its id (the stem), device, time, and how to decode it (BGR uint8)."""

    item: str
    device: str
    datetime: datetime
    load: Callable[[], np.ndarray]


def image_row(result: ImageCertainty, class_names: Sequence[str]) -> dict:
    """The score columns of one image from its certainty (observations seen in ≥ half of the passes count as
    its detections for the count, band and class samplers)."""
    seen = [o for o in result.observations if o.u_n >= 0.5]
    return {
        "maskal_uncertainty": result.uncertainty,
        "maskal_certainty": result.certainty,
        "empty": result.empty,
        "n_observations": len(result.observations),
        "n_detections": len(seen),
        "det_scores": np.array([o.score for o in seen], dtype=np.float64),
        "det_labels": np.array([class_names[o.label] for o in seen], dtype=object),
    }


def score_images(
    sampler: McDropoutMaskRCNN,
    images: Iterable[PoolImage],
    *,
    mask_share: float = DEFAULT_MASK_SHARE,
    empty_certainty: float = DEFAULT_EMPTY_CERTAINTY,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """``image_scores`` rows for ``images`` (see the module docstring); errors are rows, not exceptions."""
    names = sampler.config.class_names
    rows, loaders = [], {}
    for k, image in enumerate(images):
        row = {"item": image.item, "device": image.device, "datetime": image.datetime}
        try:
            passes = sampler.image_passes(image.load(), key=image.item, with_masks=False)
            row.update(image_row(passes.certainty(empty_certainty=empty_certainty), names))
            row.update(status="ok", error=None, maskal_pass="boxes", embedding=passes.embedding)
            loaders[image.item] = image.load
        except (ValueError, OSError, ObjectStoreError) as exc:  # an unreadable image is reported with the others
            log.warning("%s: not scored (%s)", image.item, exc)
            row.update(status="error", error=str(exc), maskal_pass=None)
        rows.append(row)
        if progress is not None:
            progress(k + 1)
    table = pd.DataFrame(rows)
    ok = table[table.get("status", pd.Series(dtype=str)) == "ok"] if len(table) else table
    n_masks = int(np.ceil(mask_share * len(ok))) if len(ok) else 0
    if n_masks:
        top = ok.sort_values(["maskal_uncertainty", "item"], ascending=[False, True]).head(n_masks)
        for index, item in zip(top.index, top["item"], strict=True):
            try:
                passes = sampler.image_passes(loaders[item](), key=item, with_masks=True)
            except (ValueError, OSError, ObjectStoreError) as exc:
                log.warning("%s: mask pass failed, box-only score kept (%s)", item, exc)
                continue
            for column, value in image_row(passes.certainty(empty_certainty=empty_certainty), names).items():
                table.at[index, column] = value
            table.at[index, "maskal_pass"] = "masks"
    return table


def tuboid_rows(classifier, tuboids: Sequence, *, passes: int, dropout: float, seed: int) -> pd.DataFrame:
    """``tuboid_scores`` rows for readable tuboids: every uncertainty, the prediction, its vote, the embedding."""
    if not tuboids:
        return pd.DataFrame()
    out = sample_tuboids(classifier, tuboids, passes=passes, dropout=dropout, seed=seed)
    scores = all_scores(out.mc_probs, out.shot_probs)
    labels = out.probs.argmax(axis=1)
    frame = pd.DataFrame({
        "item": [str(t.id) for t in tuboids], "device": [t.id.device for t in tuboids],
        "datetime": [t.id.start for t in tuboids], "label": labels,
        "pattern": [classifier.label_map.pattern_for(int(lab)) for lab in labels],
        "probability": out.probs.max(axis=1), "vote_disagreement": vote_disagreement(out.shot_probs, out.probs),
    })  # fmt: skip
    for name, values in scores.items():
        frame[name] = values
    frame["det_labels"] = [np.array([p], dtype=object) for p in frame["pattern"]]
    frame["embedding"] = list(out.embeddings)
    frame["probs"] = list(out.probs)  # the whole distribution (top-k candidates of a pre-annotation)
    return frame
