"""Halting signals of the learning loop: one row of table ``al_rounds`` per new model version of a stage.

Each annotation-queue update looks at the scores of each kind (UID images, ITC tuboids). When the stage's current
model version has scored items and differs from the last round's version, a round is recorded:

* the **fixed sample**: the ``sample_size`` unlabeled items with the smallest :func:`item_hash` (seed 0). The hash
  does not depend on the model or the pool's order, so consecutive rounds look at (nearly) the same items; a
  growing pool only adds items that rank before some of the old ones;
* its **predictions** by the new version (a tuboid's label pattern; an image's number of detections), stored in the
  row, compared with the previous round's on the items both predicted: **contradictions** (share changed) and
  **Cohen's κ** (:mod:`stickypi_assets.active.halting`);
* the validation metric of the version (from the registry) and the number of annotation items;
* **stalled**: the metric moved by less than ``tolerance`` over the last 3 rounds (Dataiku's rule). A warning
  only: annotating may still find a rare taxon no metric sees.
"""

from __future__ import annotations

import json
import numbers
from datetime import UTC, datetime

import pandas as pd

from stickypi_assets.active.halting import ModelState, cohen_kappa, contradictions, stalled
from stickypi_assets.active.samplers import item_hash
from stickypi_assets.storage.tables import AL_ROUNDS
from stickypi_assets.storage.warehouse import Warehouse

DEFAULT_SAMPLE = 100
STALL_WINDOW = 3
STALL_TOLERANCE = 0.01
#: What a version predicts for an item of each kind (the column of the score table) and the stage it belongs to.
PREDICTION = {"image": "n_detections", "tuboid": "pattern"}
STAGE = {"image": "uid", "tuboid": "itc"}

__all__ = ["ModelState", "next_round", "read_rounds", "rounds_markdown", "stalled_warning"]


def read_rounds(warehouse: Warehouse, stage: str | None = None) -> pd.DataFrame:
    """The rounds (of one stage), in order."""
    where = "WHERE stage = ?" if stage else ""
    rows = warehouse.query(f'SELECT * FROM "{AL_ROUNDS.name}" {where} ORDER BY stage, round', [stage] if stage else [])
    return rows if len(rows) else pd.DataFrame(columns=AL_ROUNDS.column_names)


def fixed_sample(pool: pd.DataFrame, exclude: set[str], size: int = DEFAULT_SAMPLE) -> pd.DataFrame:
    """The ``size`` unlabeled items of ``pool`` with the smallest item hash (see the module docstring)."""
    unlabeled = pool[~pool["item"].astype(str).isin(exclude)]
    order = item_hash(unlabeled["item"].astype(str).tolist(), 0).argsort(kind="stable")
    return unlabeled.iloc[order[:size]]


def _prediction(value):
    """A JSON-able prediction: a count (numpy or Python number) as an int, a label pattern as text."""
    return int(value) if isinstance(value, numbers.Real) and value == value else str(value)


def next_round(
    rounds: pd.DataFrame,
    kind: str,
    pool: pd.DataFrame,
    state: ModelState,
    *,
    exclude: set[str],
    sample_size: int = DEFAULT_SAMPLE,
    now: datetime | None = None,
) -> dict | None:
    """The ``al_rounds`` row for ``state``'s version, or ``None`` when it has a round already or scored nothing."""
    stage = STAGE[kind]
    mine = rounds[rounds["stage"] == stage] if len(rounds) else rounds
    if len(mine) and mine["model_version"].iloc[-1] == state.version:
        return None
    scored = pool[pool["model_version"] == state.version]
    if scored.empty:
        return None
    sample = fixed_sample(scored, exclude, sample_size)
    predictions = {str(i): _prediction(p) for i, p in zip(sample["item"], sample[PREDICTION[kind]], strict=True)}
    row = {"stage": stage, "round": len(mine) + 1, "model_version": state.version, "previous_version": None,
           "created_at": now or datetime.now(UTC), "n_labels": state.n_labels, "metric_name": state.metric_name,
           "metric_value": state.metric_value, "n_sample": len(predictions), "contradictions": None, "kappa": None,
           "predictions": json.dumps(predictions, sort_keys=True)}  # fmt: skip
    if len(mine):
        last = mine.iloc[-1]
        before = json.loads(last["predictions"] or "{}")
        common = sorted(set(before) & set(predictions))
        row["previous_version"] = last["model_version"]
        row["n_sample"] = len(common)
        if common:
            row["contradictions"] = contradictions([before[i] for i in common], [predictions[i] for i in common])
            row["kappa"] = cohen_kappa([before[i] for i in common], [predictions[i] for i in common])
    metrics = [*(mine["metric_value"].tolist() if len(mine) else []), state.metric_value]
    row["stalled"] = stalled(metrics, window=STALL_WINDOW, tolerance=STALL_TOLERANCE)
    return row


def stalled_warning(rounds: pd.DataFrame, stage: str, new_metric: float | None = None) -> str | None:
    """The stalled warning (for asset metadata and logs) when the stage's last rounds, and ``new_metric`` (a
    version just trained, before the queue records its round) when given, moved less than the tolerance."""
    mine = rounds[rounds["stage"] == stage] if len(rounds) else rounds
    values = [float(v) for v in (mine["metric_value"].tolist() if len(mine) else []) if v is not None and v == v]
    if new_metric is not None:
        values.append(float(new_metric))
    if not stalled(values, window=STALL_WINDOW, tolerance=STALL_TOLERANCE):
        return None
    shown = ", ".join(f"{v:.3f}" for v in values[-STALL_WINDOW:])
    return (f"stalled: the {stage} validation metric moved less than {STALL_TOLERANCE} over the last "
            f"{STALL_WINDOW} rounds ({shown}); more annotations of the same kind may not pay: look at the "
            "contradictions and at the taxa the model misses before annotating more")  # fmt: skip


def rounds_markdown(rounds: pd.DataFrame, stage: str, n: int = 5) -> str:
    """The stage's last rounds as a table (asset metadata)."""
    mine = rounds[rounds["stage"] == stage].tail(n) if len(rounds) else rounds
    if not len(mine):
        return "no round yet"

    def fmt(v) -> str:
        return "—" if v is None or v != v else f"{v:.3f}"

    lines = "\n".join(
        f"| {r.round} | `{str(r.model_version)[:8]}` | {r.n_labels} | {fmt(r.metric_value)} | {fmt(r.contradictions)} "
        f"| {fmt(r.kappa)} | {'yes' if r.stalled else 'no'} |"
        for r in mine.itertuples(index=False)
    )
    head = "| round | version | labels | metric | contradictions | kappa | stalled |\n" + "|---" * 7 + "|\n"
    return head + lines
