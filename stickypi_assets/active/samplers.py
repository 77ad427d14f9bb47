"""Samplers: one interface from a pool of items with their model outputs to ranked items with a score and a reason.

A **pool** is a table (``pandas.DataFrame``) with one row per candidate: ``item`` (unique id: an image's stem, a
tuboid id), ``device``, ``datetime`` (UTC), and the model outputs the samplers read: ``n_detections``,
``det_scores`` and ``det_labels`` (one array per row), ``maskal_uncertainty`` and ``empty`` (UID images),
``entropy``/``margin``/``bald``/``frame_disagreement`` (tuboids), ``label`` (predicted class of a tuboid), and
``embedding`` for diversity. The tables ``image_scores`` and ``tuboid_scores`` have these columns.

A sampler returns its **eligible** items, best first, as a table ``item, score, sampler, reason`` (higher score =
ask first); ties are broken by a hash of the item and the seed, so a ranking never depends on row order. Samplers
are model-aware only through the columns: the random one works before any model exists (Roboflow's point).

Roboflow's samplers (``roboflow/inference``, ``core/active_learning/``) are here as they are there: random, close to
threshold (|score − threshold| < ε for ≥ k detections of the selected classes), detection count, classes. Caps per
day and the mix live in :mod:`stickypi_assets.active.selection`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

RANK_COLUMNS = ["item", "score", "sampler", "reason"]


@runtime_checkable
class Sampler(Protocol):
    """What every sampler is: a name and a ranking of a pool (``chosen``: items already in this batch)."""

    name: str

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame: ...


def item_hash(items: Sequence[str] | pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per item, stable for ``(seed, item)`` across processes, orders and pools."""
    out = np.empty(len(items), dtype=np.float64)
    for i, item in enumerate(items):
        digest = hashlib.blake2b(f"{seed}:{item}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def ranked(pool: pd.DataFrame, score: np.ndarray, reasons: Sequence[str], sampler: str, seed: int) -> pd.DataFrame:
    """The ranking table for ``pool``'s rows with ``score``: best first, ties broken by :func:`item_hash`."""
    table = pd.DataFrame(
        {"item": pool["item"].astype(str).to_numpy(), "score": np.asarray(score, dtype=np.float64),
         "sampler": sampler, "reason": list(reasons), "_tie": item_hash(pool["item"].astype(str).tolist(), seed)}
    )  # fmt: skip
    table = table.sort_values(["score", "_tie"], ascending=[False, True], kind="mergesort")
    return table[RANK_COLUMNS].reset_index(drop=True)


def _require(pool: pd.DataFrame, columns: Collection[str], sampler: str) -> None:
    missing = [c for c in columns if c not in pool.columns]
    if missing:
        raise ValueError(f"sampler {sampler!r} needs pool columns {missing} (have {list(pool.columns)})")


def _matching(labels, classes: Collection | None) -> np.ndarray:
    labels = np.asarray(labels if labels is not None else [], dtype=object)
    if classes is None:
        return np.ones(len(labels), dtype=bool)
    return np.isin(labels, list(classes))


@dataclass(frozen=True)
class RandomSampler:
    """Every item, in a random order fixed by the seed (works before any model exists)."""

    seed: int = 0
    name: str = "random"

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        _require(pool, ["item"], self.name)
        score = 1.0 - item_hash(pool["item"].astype(str).tolist(), self.seed)
        return ranked(pool, score, [f"random pick (seed {self.seed})"] * len(pool), self.name, self.seed)


@dataclass(frozen=True)
class ScoreSampler:
    """Items by an uncertainty column (``maskal_uncertainty``, ``bald``, ``entropy``, …), most uncertain first.

    Rows where the column is NaN are not eligible. ``describe(row)`` writes the reason (default: the score). An
    ``optional`` column may be absent from the pool (a signal not every pool carries, e.g. ``drift`` outside the
    warehouse): then no row is eligible.
    """

    column: str
    name: str = ""
    seed: int = 0
    min_score: float = 0.0
    describe: Callable[[pd.Series], str] | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.column)

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        if self.optional and self.column not in pool.columns:
            pool = pool.assign(**{self.column: np.nan})
        _require(pool, ["item", self.column], self.name)
        score = pd.to_numeric(pool[self.column], errors="coerce")
        eligible = pool[score.notna() & (score >= self.min_score)]
        values = score[eligible.index].to_numpy()
        if self.describe is None:
            reasons = [f"{self.column} {v:.3f}" for v in values]
        else:
            reasons = [self.describe(row) for _, row in eligible.iterrows()]
        return ranked(eligible, values, reasons, self.name, self.seed)


def maskal_reason(row: pd.Series) -> str:
    """The reason an image is asked for by maskAL's certainty (empty images say so)."""
    if bool(row.get("empty", False)):
        return f"no detection in any MC-dropout pass (certainty set to {1 - row['maskal_uncertainty']:.2f})"
    n = row.get("n_observations")
    seen = f" over {int(n)} insects" if n is not None and not pd.isna(n) else ""
    return f"maskAL certainty {1 - row['maskal_uncertainty']:.3f}{seen}"


def drift_reason(row: pd.Series) -> str:
    """The reason a tuboid is asked for by the ``drift`` sampler: the warning that points at it."""
    reason = row.get("drift_reason")
    return str(reason) if isinstance(reason, str) and reason else f"drift {row['drift']:.3f}"


def maskal_sampler(seed: int = 0) -> ScoreSampler:
    """Images by maskAL uncertainty (1 − certainty), least certain first."""
    return ScoreSampler("maskal_uncertainty", name="maskal", seed=seed, describe=maskal_reason)


@dataclass(frozen=True)
class ConfidenceBandSampler:
    """Roboflow's ``close_to_threshold``: ≥ ``min_count`` detections (of ``classes``) with |score − threshold| < ε.

    Score: the number of such detections, plus how close they are on average (in (0, 1)), so that among items
    with as many doubtful detections the closest come first.
    """

    threshold: float = 0.5
    epsilon: float = 0.1
    min_count: int = 1
    classes: tuple | None = None
    seed: int = 0
    name: str = "confidence_band"

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        _require(pool, ["item", "det_scores", "det_labels"], self.name)
        counts, closeness = np.zeros(len(pool)), np.zeros(len(pool))
        for i, (scores, labels) in enumerate(zip(pool["det_scores"], pool["det_labels"], strict=True)):
            s = np.asarray(scores if scores is not None else [], dtype=np.float64)
            distance = np.abs(s - self.threshold)
            band = (distance < self.epsilon) & _matching(labels, self.classes)
            counts[i] = band.sum()
            closeness[i] = 1.0 - distance[band].mean() / self.epsilon if band.any() else 0.0
        keep = counts >= self.min_count
        eligible = pool[keep]
        reasons = [
            f"{int(c)} detection(s) within {self.epsilon:g} of threshold {self.threshold:g}" for c in counts[keep]
        ]
        return ranked(eligible, counts[keep] + 0.999 * closeness[keep], reasons, self.name, self.seed)


@dataclass(frozen=True)
class DetectionCountSampler:
    """Roboflow's ``detections_number_based``: items with between ``min_count`` and ``max_count`` detections (of
    ``classes``), e.g. ``0..0`` for the frames where the model sees nothing. All eligible items score 1 (random
    order for the seed)."""

    min_count: int = 0
    max_count: int = 0
    classes: tuple | None = None
    seed: int = 0
    name: str = "detection_count"

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        _require(pool, ["item", "det_labels"], self.name)
        counts = np.array([_matching(lab, self.classes).sum() for lab in pool["det_labels"]], dtype=np.int64)
        keep = (counts >= self.min_count) & (counts <= self.max_count)
        what = "" if self.classes is None else f" of {', '.join(map(str, self.classes))}"
        reasons = [f"{int(c)} detection(s){what} (asked: {self.min_count}..{self.max_count})" for c in counts[keep]]
        return ranked(pool[keep], np.ones(int(keep.sum())), reasons, self.name, self.seed)


@dataclass(frozen=True)
class ClassSampler:
    """Roboflow's ``classes_based``: items with at least one detection (or a tuboid predicted) of ``classes``;
    score = how many."""

    classes: tuple
    seed: int = 0
    name: str = "classes"

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        _require(pool, ["item", "det_labels"], self.name)
        counts = np.array([_matching(lab, self.classes).sum() for lab in pool["det_labels"]], dtype=np.int64)
        keep = counts > 0
        reasons = [f"{int(c)} detection(s) of {', '.join(map(str, self.classes))}" for c in counts[keep]]
        return ranked(pool[keep], counts[keep].astype(float), reasons, self.name, self.seed)
