"""Tracking accuracy against ground truth with standard multi-object-tracking metrics (``motmetrics``).

Both sides are per-frame boxes with an identity: the truth (e.g. a synthetic deployment's
``frames.parquet``, see :func:`stickypi_assets.synth.sim_pairs.ground_truth_tracks`) and the tracker's
output (rows of table ``tuboid_frames``, or :func:`tuboid_observations` of a tracking result). Frames are
matched by their key (the image stem ``<device>.<datetime>``), instances by IoU: a prediction and a truth
with IoU below ``min_iou`` (default 0.5) never match. IoU is of the bounding boxes, or of the outlines when
both tables have a ``polygon`` column (``geometry="polygon"``): a detector that outlines an insect's body
without its thin legs has a much smaller box than the annotation, but nearly the same area.

Reported (``motmetrics`` names): ``idf1`` (identity F1, the share of detections carrying the right identity
over the whole sequence: the figure that matters for counting insects, since a switched or split
track is a double count), ``idp``/``idr``, ``mota`` (1 - (misses + false positives + id switches) / truth),
``num_switches``, ``num_fragmentations``, ``mostly_tracked``/``mostly_lost`` and detection
``precision``/``recall``. The library is maintained and widely used (MOTChallenge's devkit formulas), so the
figures compare with published trackers' numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stickypi_assets.ml.sim.tracking import TrackedTuboid

METRICS = (
    "idf1", "idp", "idr", "mota", "motp", "num_switches", "num_fragmentations", "mostly_tracked",
    "mostly_lost", "num_unique_objects", "num_objects", "num_predictions", "num_misses", "num_false_positives",
    "precision", "recall",
)  # fmt: skip
BOX_COLUMNS = ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]


@dataclass(frozen=True)
class TrackingScores:
    """The metrics of one comparison, plain floats/ints (``as_dict`` for JSON and Dagster metadata)."""

    values: dict[str, float]
    n_frames: int

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def as_dict(self) -> dict[str, float]:
        return dict(self.values) | {"n_frames": self.n_frames}

    def summary(self) -> str:
        v = self.values
        return (
            f"IDF1 {v['idf1']:.3f} (IDP {v['idp']:.3f}, IDR {v['idr']:.3f}), MOTA {v['mota']:.3f}, "
            f"{int(v['num_switches'])} id switches, {int(v['num_fragmentations'])} fragmentations, "
            f"{int(v['mostly_tracked'])}/{int(v['num_unique_objects'])} insects mostly tracked, "
            f"over {self.n_frames} frames"
        )


def tuboid_observations(tuboids: Iterable[TrackedTuboid]) -> pd.DataFrame:
    """A tracking result as rows ``frame, track_id, bbox_x, bbox_y, bbox_w, bbox_h`` (one per observation)."""
    rows = []
    for tub in tuboids:
        for obs in tub.observations:
            x, y, w, h = obs.instance.bbox
            rows.append(
                {"frame": obs.frame.key, "track_id": tub.track_id, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h}
            )
    return pd.DataFrame(rows, columns=["frame", "track_id", *BOX_COLUMNS])


def iou_distance(a: np.ndarray, b: np.ndarray, max_distance: float) -> np.ndarray:
    """``1 - IoU`` of every box pair (x, y, w, h), NaN (never matched) above ``max_distance``.

    What ``motmetrics.distances.iou_matrix`` computes; that function calls ``np.asfarray``, which NumPy 2
    removed, so it is done here (vectorised) and ``motmetrics`` does the matching and the accounting.
    """
    if len(a) == 0 or len(b) == 0:
        return np.empty((len(a), len(b)))
    a0, a1 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b0, b1 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.prod(np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None), axis=2)
    union = np.prod(a[:, None, 2:], axis=2) + np.prod(b[None, :, 2:], axis=2) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = 1.0 - np.where(union > 0, inter / union, 0.0)
    dist[dist > max_distance] = np.nan
    return dist


def polygon_iou_distance(a: Sequence[np.ndarray], b: Sequence[np.ndarray], max_distance: float) -> np.ndarray:
    """``1 - IoU`` of every outline pair (shapely, only pairs whose boxes overlap), NaN above ``max_distance``."""
    from stickypi_assets.ml.uid.validate import iou_matrix

    iou = iou_matrix([np.vstack(x).astype(np.float64).reshape(-1, 2) for x in a],
                     [np.vstack(x).astype(np.float64).reshape(-1, 2) for x in b])  # fmt: skip
    dist = 1.0 - iou
    dist[dist > max_distance] = np.nan
    return dist


def tracking_scores(
    truth: pd.DataFrame,
    predicted: pd.DataFrame,
    frames: Sequence[str] | None = None,
    *,
    truth_id: str = "insect_id",
    predicted_id: str = "track_id",
    frame_column: str = "frame",
    truth_frame_column: str | None = None,
    min_iou: float = 0.5,
    geometry: str = "bbox",
) -> TrackingScores:
    """Compare ``predicted`` with ``truth`` frame by frame, in the order of ``frames``.

    ``frames`` lists every frame key of the sequence in time order (frames where nothing was predicted count
    their truth as misses); default: the union of both tables' frame keys, sorted (stems sort by time within
    one device). Both tables need the four ``bbox_*`` columns (x, y, width, height in pixels), and a
    ``polygon`` column (``(N, 2)`` vertices) with ``geometry="polygon"``.
    """
    import motmetrics as mm

    truth_frame_column = truth_frame_column or frame_column
    if not 0 < min_iou <= 1:
        raise ValueError("min_iou must be in (0, 1]")
    if geometry not in ("bbox", "polygon"):
        raise ValueError("geometry must be 'bbox' or 'polygon'")
    needed = BOX_COLUMNS + (["polygon"] if geometry == "polygon" else [])
    for name, table, cols in (
        ("truth", truth, [truth_frame_column, truth_id]),
        ("predicted", predicted, [frame_column, predicted_id]),
    ):
        missing = [c for c in [*cols, *needed] if c not in table.columns]
        if missing:
            raise ValueError(f"{name} table lacks columns {missing}")
    if frames is None:
        frames = sorted(set(truth[truth_frame_column]) | set(predicted[frame_column]))
    # motmetrics builds float id columns under pandas 3: give it integer ids (same identities).
    truth = truth.assign(_id=pd.factorize(truth[truth_id])[0] + 1)
    predicted = predicted.assign(_id=pd.factorize(predicted[predicted_id])[0] + 1)
    truth_by = dict(tuple(truth.groupby(truth_frame_column, sort=False)))
    pred_by = dict(tuple(predicted.groupby(frame_column, sort=False)))
    empty = np.zeros((0, 4))
    acc = mm.MOTAccumulator(auto_id=True)
    for key in frames:
        t = truth_by.get(key)
        p = pred_by.get(key)
        t_ids = [] if t is None else t["_id"].tolist()
        p_ids = [] if p is None else p["_id"].tolist()
        t_box = empty if t is None else t[BOX_COLUMNS].to_numpy(dtype=float)
        p_box = empty if p is None else p[BOX_COLUMNS].to_numpy(dtype=float)
        if geometry == "polygon" and len(t_box) and len(p_box):
            dist = polygon_iou_distance(list(t["polygon"]), list(p["polygon"]), max_distance=1.0 - min_iou)
        else:
            dist = iou_distance(t_box, p_box, max_distance=1.0 - min_iou)
        acc.update(t_ids, p_ids, dist)
    summary = mm.metrics.create().compute(acc, metrics=list(METRICS), name="all")
    values = {m: float(summary.loc["all", m]) for m in METRICS}
    return TrackingScores(values=values, n_frames=len(frames))
