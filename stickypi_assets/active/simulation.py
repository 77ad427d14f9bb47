"""A simulated annotator: rounds of score → select → "annotate" from ground truth → retrain, against random.

The loop is the platform's (the same samplers and :func:`~stickypi_assets.active.selection.select_batch`); only the
annotator is simulated: it answers with the synthetic ground truth, instantly and without mistakes. A stage plugs
in through :class:`Stage` (train on labeled items, evaluate on a held-out deployment, score the unlabeled pool).

Every strategy of a comparison starts from **the same initial random set for a seed** and gets the same training
budget per round, so the curves differ only by what was asked. :func:`labels_to_reach` reads off a curve how many
labels reached a target metric (linear interpolation between rounds); :func:`label_share` is the headline: the
share of random's labels a strategy needed to reach random's final metric (``None`` when it never did).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from stickypi_assets.active.mixes import parse_mix
from stickypi_assets.active.samplers import RandomSampler
from stickypi_assets.active.selection import MixEntry, select_batch

log = logging.getLogger(__name__)


class Stage(Protocol):
    """What the simulation needs of a stage (see :mod:`stickypi_assets.active.itc_simulation`)."""

    #: The pool: one row per item that may be asked for (``item``, ``device``, ``datetime``).
    pool: pd.DataFrame
    #: The metric compared between strategies (a key of :meth:`evaluate`'s result).
    metric: str

    def train(self, labeled: Sequence[str], seed: int) -> Any: ...

    def evaluate(self, model: Any) -> dict[str, float]: ...

    def score(self, model: Any, unlabeled: Sequence[str], labeled: Sequence[str], seed: int) -> pd.DataFrame: ...


class SyntheticStage:
    """What the ITC and UID stages share: a work folder (their deployments and each round's bundle) and the
    MC-dropout settings of their scores."""

    def __init__(self, workdir: str | Path, config: Any, passes: int, dropout: float) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config, self.passes, self.dropout = config, passes, dropout


@dataclass
class RoundResult:
    """One round of one strategy: labels used, the metrics of the model trained on them, what it cost."""

    strategy: str
    seed: int
    round: int
    n_labels: int
    metrics: dict[str, float]
    train_s: float
    score_s: float
    picked_by: dict[str, int] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("metrics", "picked_by")}
        row.update(self.metrics)
        row["picked_by"] = ", ".join(f"{k} {v}" for k, v in sorted(self.picked_by.items()))
        return row


MixFactory = Callable[[int, Sequence[str]], Sequence[MixEntry | tuple]]


def strategies(kind: str, uncertainty: str, default_mix: str) -> dict[str, MixFactory]:
    """What a comparison runs for ``kind`` (images or tuboids): ``random`` (the baseline), the ``uncertainty``
    sampler alone, and ``mix``, the annotation queue's default."""
    return {
        "random": lambda seed, labeled: parse_mix("random:1", kind, seed=seed),
        uncertainty: lambda seed, labeled: parse_mix(f"{uncertainty}:1", kind, seed=seed),
        "mix": lambda seed, labeled: parse_mix(default_mix, kind, seed=seed, labeled=labeled),
    }


def run_strategy(
    stage: Stage,
    strategy: str,
    mix: MixFactory,
    *,
    seed: int,
    n_initial: int,
    batch_size: int,
    n_rounds: int,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """``n_rounds`` rounds of one strategy from the seed's initial random set (round 0 = that set)."""
    pool = stage.pool
    items = pool["item"].astype(str).tolist()
    initial = select_batch(pool, [(RandomSampler(seed=seed), 1.0)], n_initial, window=None)["item"].tolist()
    labeled: list[str] = list(initial)
    results: list[RoundResult] = []
    picked: dict[str, int] = {"initial random": len(initial)}
    for r in range(n_rounds + 1):
        t0 = time.perf_counter()
        model = stage.train(labeled, seed)
        metrics = stage.evaluate(model)
        train_s = time.perf_counter() - t0
        score_s = 0.0
        result = RoundResult(strategy, seed, r, len(labeled), metrics, round(train_s, 1), 0.0, dict(picked))
        if r < n_rounds:
            t0 = time.perf_counter()
            taken = set(labeled)
            unlabeled = [i for i in items if i not in taken]
            if not unlabeled:
                results.append(result)
                break
            scored = stage.score(model, unlabeled, labeled, seed * 1000 + r)
            batch = select_batch(scored, mix(seed * 1000 + r, labeled), batch_size, exclude=taken, window=None)
            score_s = time.perf_counter() - t0
            result.score_s = round(score_s, 1)
            labeled += batch["item"].tolist()
            for name, count in batch["sampler"].value_counts().items():
                picked[str(name)] = picked.get(str(name), 0) + int(count)
        results.append(result)
        log.info("%s seed %d round %d: %d labels, %s = %.3f", strategy, seed, r, result.n_labels, stage.metric,
                 metrics.get(stage.metric, float("nan")))  # fmt: skip
        if on_round is not None:
            on_round(result)
    return results


def labels_to_reach(n_labels: Sequence[int], values: Sequence[float], target: float) -> float | None:
    """Labels at which a learning curve first reaches ``target`` (linear between rounds); ``None`` if never."""
    for k, (n, v) in enumerate(zip(n_labels, values, strict=True)):
        if v >= target:
            if k == 0:
                return float(n)
            n0, v0 = n_labels[k - 1], values[k - 1]
            return float(n0 + (n - n0) * (target - v0) / (v - v0)) if v != v0 else float(n)
    return None


def label_share(curve: pd.DataFrame, random_curve: pd.DataFrame, metric: str) -> float | None:
    """Share of random's final labels that ``curve`` needed to reach random's final ``metric``."""
    random_curve = random_curve.sort_values("n_labels")
    target = float(random_curve[metric].iloc[-1])
    final_labels = float(random_curve["n_labels"].iloc[-1])
    curve = curve.sort_values("n_labels")
    needed = labels_to_reach(curve["n_labels"].tolist(), curve[metric].tolist(), target)
    return None if needed is None else needed / final_labels


def summarise(rows: pd.DataFrame, metric: str, baseline: str = "random") -> pd.DataFrame:
    """Per strategy and seed: final metric and :func:`label_share` against the baseline of the same seed."""
    out = []
    for (strategy, seed), curve in rows.groupby(["strategy", "seed"], sort=True):
        base = rows[(rows["strategy"] == baseline) & (rows["seed"] == seed)]
        share = label_share(curve, base, metric) if len(base) else None
        out.append({"strategy": strategy, "seed": seed, "final_labels": int(curve["n_labels"].max()),
                    f"final_{metric}": float(curve.sort_values("n_labels")[metric].iloc[-1]),
                    "share_of_random_labels": share})  # fmt: skip
    return pd.DataFrame(out)


def mean_curve(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean ± sd of ``metric`` per strategy and number of labels over seeds."""
    grouped = rows.groupby(["strategy", "n_labels"])[metric]
    return grouped.agg(["mean", "std", "count"]).reset_index()


def share_summary(summary: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per strategy: the shares per seed and their mean (seeds that never reached random's final count as 1+)."""
    out: dict[str, dict[str, Any]] = {}
    for strategy, group in summary.groupby("strategy"):
        shares = group["share_of_random_labels"].tolist()
        finite = [1.0 if s is None or np.isnan(s) else float(s) for s in shares]
        out[str(strategy)] = {"per_seed": shares, "mean": float(np.mean(finite)) if finite else None}
    return out
