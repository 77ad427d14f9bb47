"""Diversity: items far, in the backbone's embedding space, from everything annotated or already in the batch.

Uncertainty alone asks for twenty consecutive frames of one card when that card confuses the model; a batch is
worth more when it covers what the model has not seen. :class:`CoreSetSampler` ranks the pool with
scikit-activeml's ``CoreSet`` (greedy k-centre, Sener & Savarese 2018): each next item is the one farthest from its
nearest labeled-or-chosen neighbour. The embeddings are centred on the pool's mean and L2-normalised first: pooled
backbone features of sticky cards are all positive and nearly parallel (raw cosine distances between two cards
are ~0.001), and they differ in scale between cards lit by day and by the flash; centring keeps what
distinguishes one frame from the others. Items of the pool that are excluded from the batch (already
annotated or queued) count as labeled: the batch moves away from them too.

The ranking is sequential, so it is done for a bounded number of items (``horizon``): enough for a batch, not the
whole season.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from skactiveml.pool import CoreSet

from stickypi_assets.active.samplers import RANK_COLUMNS, _require, item_hash


def embedding_matrix(pool: pd.DataFrame) -> np.ndarray:
    """The pool's ``embedding`` column, centred on its mean and L2-normalised, as a float matrix ``(N, D)``."""
    if len(pool) == 0:
        return np.zeros((0, 1))
    x = np.stack([np.asarray(e, dtype=np.float64).reshape(-1) for e in pool["embedding"]])
    if len(x) > 1:
        x = x - x.mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class CoreSetSampler:
    """Greedy k-centre over embeddings (scikit-activeml ``CoreSet``), first ``horizon`` picks ranked."""

    labeled: Collection[str] = field(default_factory=frozenset)
    horizon: int = 200
    seed: int = 0
    name: str = "diversity"

    def rank(self, pool: pd.DataFrame, chosen: Sequence[str] = ()) -> pd.DataFrame:
        _require(pool, ["item", "embedding"], self.name)
        items = pool["item"].astype(str).to_numpy()
        anchors = set(self.labeled) | set(map(str, chosen))
        is_anchor = np.isin(items, list(anchors))
        candidates = np.flatnonzero(~is_anchor)
        if len(candidates) == 0:
            return pd.DataFrame(columns=RANK_COLUMNS)
        x = embedding_matrix(pool)
        y = np.where(is_anchor, 0.0, np.nan)
        n = min(self.horizon, len(candidates))
        if not is_anchor.any():
            # CoreSet needs a centre to measure from: start at the item a seeded hash picks
            first = candidates[np.argmin(item_hash(items[candidates].tolist(), self.seed))]
            y[first] = 0.0
            rest = candidates[candidates != first]
            order = [first]
            if n > 1:
                order += list(self._query(x, y, rest, n - 1))
        else:
            order = list(self._query(x, y, candidates, n))
        distances = self._distances(x, is_anchor, order)
        reasons = [f"far from what is annotated or chosen (cosine distance {d:.3f})" for d in distances]
        score = np.linspace(1.0, 0.5, num=len(order)) if len(order) > 1 else np.ones(1)
        return pd.DataFrame({"item": items[order], "score": score, "sampler": self.name, "reason": reasons})

    def _query(self, x: np.ndarray, y: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
        if n <= 0 or len(candidates) == 0:
            return np.zeros(0, dtype=np.int64)
        strategy = CoreSet(missing_label=np.nan, random_state=self.seed)
        return np.asarray(strategy.query(x, y, candidates=candidates, batch_size=min(n, len(candidates))))

    @staticmethod
    def _distances(x: np.ndarray, is_anchor: np.ndarray, order: Sequence[int]) -> list[float]:
        """Each pick's cosine distance to its nearest anchor or earlier pick (what made it chosen)."""
        centres = list(np.flatnonzero(is_anchor))
        out = []
        for i in order:
            out.append(float(1.0 - (x[centres] @ x[i]).max()) if centres else 1.0)
            centres.append(i)
        return out
