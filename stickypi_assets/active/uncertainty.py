"""Uncertainty of a classifier's probabilities: least confidence, margin, entropy, BALD, and frame disagreement.

All scores are **uncertainties in [0, 1]** (1 = ask first), so samplers can mix them:

* ``least_confidence = 1 − max p`` and ``margin = 1 − (p₁ − p₂)`` (Dataiku's definitions), ``entropy = H(p) / log C``,
  on the mean of the MC-dropout passes;
* ``bald = (H(mean_t p_t) − mean_t H(p_t)) / log C``: the mutual information between the prediction and the
  weights, high only where the passes disagree with one another (not where they agree that a tuboid is ambiguous);
* ``frame_disagreement``: the same quantity over **a tuboid's own frames** instead of dropout masks, i.e. the
  generalised Jensen-Shannon divergence of the shots' class distributions, normalised by ``log C``. A tuboid whose
  frames each look like a different taxon (the SIM joined two insects, the insect is hidden in some frames, or the
  model knows the taxon only from some angles) is worth an expert's look even when the pooled prediction is sure.
  No peer has this signal: it needs the tuboids that the SIM gives us for free.
"""

from __future__ import annotations

import numpy as np

SCORES = ("least_confidence", "margin", "entropy", "bald", "frame_disagreement")


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=axis)


def _norm(n_classes: int) -> float:
    return float(np.log(n_classes)) if n_classes > 1 else 1.0


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``1 − max p`` per row of ``probs (N, C)``."""
    return 1.0 - np.asarray(probs, dtype=np.float64).max(axis=-1)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 − (p₁ − p₂)`` per row of ``probs (N, C)`` (1 for a single class: nothing to compare)."""
    p = np.sort(np.asarray(probs, dtype=np.float64), axis=-1)
    if p.shape[-1] < 2:
        return np.ones(p.shape[:-1])
    return 1.0 - (p[..., -1] - p[..., -2])


def entropy(probs: np.ndarray) -> np.ndarray:
    """``H(p) / log C`` per row of ``probs (N, C)``."""
    p = np.asarray(probs, dtype=np.float64)
    return _entropy(p) / _norm(p.shape[-1])


def bald(mc_probs: np.ndarray) -> np.ndarray:
    """BALD per item of ``mc_probs (T, N, C)`` (``T`` passes): ``(H(mean p) − mean H(p)) / log C``, ≥ 0."""
    p = np.asarray(mc_probs, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"expected (passes, items, classes), got shape {p.shape}")
    value = _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)
    return np.clip(value, 0.0, None) / _norm(p.shape[-1])


def frame_disagreement(shot_probs: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Generalised Jensen-Shannon divergence between the shots of each tuboid, ``shot_probs (N, S, C)``, over
    ``log C``; ``valid (N, S)`` masks out missing shots (a tuboid with fewer than two valid shots scores 0)."""
    p = np.asarray(shot_probs, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"expected (items, shots, classes), got shape {p.shape}")
    w = np.ones(p.shape[:2]) if valid is None else np.asarray(valid, dtype=np.float64)
    counts = w.sum(axis=1)
    safe = np.where(counts > 0, counts, 1.0)
    mean = (p * w[..., None]).sum(axis=1) / safe[:, None]
    value = _entropy(mean) - (_entropy(p) * w).sum(axis=1) / safe
    value = np.where(counts >= 2, np.clip(value, 0.0, None), 0.0)
    return value / _norm(p.shape[-1])


def vote_disagreement(shot_probs: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Share of a tuboid's shots whose own top class differs from the pooled prediction's (for reasons)."""
    shots = np.asarray(shot_probs).argmax(axis=-1)
    return (shots != np.asarray(pooled).argmax(axis=-1)[:, None]).mean(axis=1)


def all_scores(mc_probs: np.ndarray, shot_probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every score of :data:`SCORES` for ``mc_probs (T, N, C)`` (and ``shot_probs (N, S, C)`` when given)."""
    mean = np.asarray(mc_probs, dtype=np.float64).mean(axis=0)
    scores = {
        "least_confidence": least_confidence(mean),
        "margin": margin(mean),
        "entropy": entropy(mean),
        "bald": bald(mc_probs),
    }
    if shot_probs is not None:
        scores["frame_disagreement"] = frame_disagreement(shot_probs)
    return scores
