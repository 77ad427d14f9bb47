"""When more labels stop paying: contradictions and Cohen's κ between consecutive models, and the stalled rule.

* **Contradictions** (Dataiku's ML-assisted labeling): the share of a fixed sample of unlabeled items whose
  prediction changed between the previous and the new model. A model still learning changes its mind often.
* **Cohen's κ** between the two models' predictions on that sample (small-text's stopping criterion: κ ≥ 0.99 over a
  window of 3 rounds): agreement corrected for what two models would agree on by chance.
* **Stalled** (Dataiku): the last ``window`` values of a metric change by less than ``tolerance`` step to step.
  Warnings, never an automatic stop: an ecologist may still want the rare taxon that no metric sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelState:
    """A stage's current model as the halting signals see it: its version, its validation metric (``None`` for
    a local bundle the registry does not know) and how many annotation items it can learn from."""

    version: str
    metric_name: str | None
    metric_value: float | None
    n_labels: int


def _paired(previous: Sequence, current: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The two rounds' predictions as arrays; ``ValueError`` unless they are of the same items."""
    a, b = np.asarray(previous, dtype=object), np.asarray(current, dtype=object)
    if a.shape != b.shape:
        raise ValueError(f"predictions of different items: {a.shape} vs {b.shape}")
    return a, b


def contradictions(previous: Sequence, current: Sequence) -> float:
    """Share of items whose prediction differs between ``previous`` and ``current`` (same items, same order)."""
    a, b = _paired(previous, current)
    if a.size == 0:
        return 0.0
    return float(np.mean(a != b))


def cohen_kappa(previous: Sequence, current: Sequence) -> float:
    """Cohen's κ = (p_o − p_e) / (1 − p_e) of two label sequences; 1.0 when both use one and the same label."""
    a, b = _paired(previous, current)
    if a.size == 0:
        return 1.0
    labels = sorted(set(a.tolist()) | set(b.tolist()), key=repr)
    p_o = float(np.mean(a == b))
    p_e = float(sum(np.mean(a == label) * np.mean(b == label) for label in labels))
    if p_e >= 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def stalled(values: Sequence[float], *, window: int = 3, tolerance: float = 0.01) -> bool:
    """True when the last ``window`` values exist and each differs from the one before by less than ``tolerance``."""
    v = [float(x) for x in values if x is not None and not np.isnan(float(x))]
    if window < 2 or len(v) < window:
        return False
    tail = v[-window:]
    return all(abs(tail[i] - tail[i - 1]) < tolerance for i in range(1, window))


def kappa_converged(kappas: Sequence[float], *, threshold: float = 0.99, window: int = 3) -> bool:
    """small-text's rule: the last ``window`` κ values are all ≥ ``threshold``."""
    k = [float(x) for x in kappas if x is not None and not np.isnan(float(x))]
    return len(k) >= window and all(x >= threshold for x in k[-window:])
