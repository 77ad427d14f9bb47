"""ITC validation: the bundle's model on its validation tuboids → confusion matrix, per-class scores, accuracy.

The original had no ITC ``validate`` (defect 25): only a console report during training, computed on
randomly drawn shots. Here shots are deterministic (evenly spaced tiles), and ``validate`` writes into its
target folder:

``results.csv``
    One row per validation tuboid: ``tuboid_id, directory, gt_label, gt_pattern, label, pattern, probability,
    correct`` and ``prob_<k>`` for every label ``k`` (the softmax of the logits).
``confusion_matrix.csv``
    Counts, rows = ground-truth label, columns = predicted label, over every label ``0 .. n_classes - 1``.
``per_class.csv``
    Per label: pattern, taxonomy name, support (ground truth count), predicted count, true positives,
    precision, recall and F1. Precision is empty when the label was never predicted, recall when it has no
    ground truth; ``F1 = 2 TP / (2 TP + FP + FN)`` (the harmonic mean of precision and recall wherever both
    exist, 0 when a label with support is never predicted correctly, empty when it has neither support nor
    predictions).
``metrics.json``
    ``accuracy``, macro precision/recall/F1 over the labels **present in the ground truth** (an undefined
    precision counts as 0 there, as scikit-learn's ``zero_division=0``; ``macro_recall`` is what promotion
    compares, as it cannot hide a lost taxon), support-weighted F1, counts, mean cross-entropy, ``per_class``
    (name, support, predicted, tp, recall, precision of every label with support or predictions), ``confusion``
    (label names and counts), the model version and the tuboids skipped while loading.
``confusion_matrix.png``
    The matrix drawn with counts, each row shaded by its share of the row (matplotlib when installed,
    otherwise OpenCV, which is always there).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from stickypi_assets.formats.labels import LabelMap, deepest_level
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.dataset import ItcItem, ShotDataset, TileCache, bundle_data
from stickypi_assets.ml.itc.model import ItcNet

log = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
CONFUSION_CSV = "confusion_matrix.csv"
PER_CLASS_CSV = "per_class.csv"
METRICS_JSON = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"


# ------------------------------------------------------------------------------------------------ metrics


def confusion_matrix(gt: Sequence[int], pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts, ``[g, p]`` = tuboids of label ``g`` predicted ``p``."""
    gt, pred = np.asarray(gt, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred differ in length: {gt.shape} vs {pred.shape}")
    if len(gt) and (min(gt.min(), pred.min()) < 0 or max(gt.max(), pred.max()) >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (gt, pred), 1)
    return cm


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def per_class_metrics(cm: np.ndarray) -> list[dict[str, Any]]:
    """Per label: ``label, support, predicted, tp, precision, recall, f1`` (``None`` where undefined)."""
    cm = np.asarray(cm)
    out = []
    for k in range(cm.shape[0]):
        tp = int(cm[k, k])
        support = int(cm[k].sum())
        predicted = int(cm[:, k].sum())
        fp, fn = predicted - tp, support - tp
        out.append(
            {
                "label": k,
                "support": support,
                "predicted": predicted,
                "tp": tp,
                "precision": _ratio(tp, predicted),
                "recall": _ratio(tp, support),
                "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            }
        )
    return out


def summary_metrics(cm: np.ndarray) -> dict[str, Any]:
    """Accuracy and macro/weighted averages over the labels with ground-truth support (see module docstring)."""
    cm = np.asarray(cm)
    rows = [r for r in per_class_metrics(cm) if r["support"] > 0]
    n = int(cm.sum())
    support = np.array([r["support"] for r in rows], dtype=np.float64)

    def mean(key: str) -> float | None:
        return float(np.mean([r[key] or 0.0 for r in rows])) if rows else None

    return {
        "n": n,
        "accuracy": _ratio(float(np.trace(cm)), n),
        "macro_precision": mean("precision"),
        "macro_recall": mean("recall"),
        "macro_f1": mean("f1"),
        "weighted_f1": float(np.dot(support, [r["f1"] for r in rows]) / support.sum()) if rows else None,
        "n_classes_present": len(rows),
    }


# ------------------------------------------------------------------------------------------------ evaluation


def evaluate_items(
    net: ItcNet,
    items: Sequence[ItcItem],
    config: ItcConfig,
    *,
    device: str | torch.device = "cpu",
    cache: TileCache | None = None,
) -> np.ndarray:
    """Softmax probabilities ``(len(items), n_classes)`` (float64) with deterministic shots, in eval mode.

    The network's train/eval mode is restored afterwards (training calls this between rounds).
    """
    if not items:
        return np.zeros((0, net.n_classes))
    dataset = ShotDataset(items, config, cache)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.inference_batch_size, shuffle=False)
    was_training = net.training
    net.eval()
    out = []
    try:
        with torch.no_grad():
            for shots, sizes, _ in loader:
                logits = net(shots.to(device), sizes.to(device))
                out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    finally:
        net.train(was_training)
    return np.concatenate(out)


def cross_entropy(probabilities: np.ndarray, labels: Sequence[int]) -> float | None:
    """Mean ``-log p(true label)`` (clamped at 1e-12); ``None`` for no items."""
    if len(labels) == 0:
        return None
    p = probabilities[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def evaluation_metrics(probabilities: np.ndarray, labels: Sequence[int], n_classes: int) -> dict[str, Any]:
    """:func:`summary_metrics` of the argmax predictions plus the mean cross-entropy ``loss``."""
    pred = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    metrics = summary_metrics(confusion_matrix(labels, pred, n_classes))
    metrics["loss"] = cross_entropy(probabilities, labels)
    return metrics


# ------------------------------------------------------------------------------------------------ outputs


def short_name(label_map: LabelMap, label: int) -> str:
    """The most specific taxonomy level a label's pattern names (e.g. ``Drosophila suzukii``)."""
    return deepest_level(label_map.taxonomy_for(label)) or label_map.pattern_for(label)


def _cell_colour(share: float) -> tuple[int, int, int]:
    """White → dark blue (BGR) as the share of the row grows."""
    s = min(max(share, 0.0), 1.0)
    return int(255 - 75 * s), int(255 - 185 * s), int(255 - 225 * s)


def draw_confusion_png(cm: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Write the confusion matrix as a PNG (matplotlib if installed, else OpenCV)."""
    path = Path(path)
    cm = np.asarray(cm)
    n = cm.shape[0]
    row_sums = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, row_sums, out=np.zeros(cm.shape, dtype=np.float64), where=row_sums > 0)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.5 + 0.45 * n))
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for g in range(n):
            for p in range(n):
                if cm[g, p]:
                    ax.text(p, g, str(cm[g, p]), ha="center", va="center",
                            color="white" if shares[g, p] > 0.6 else "black", fontsize=8)  # fmt: skip
        ax.set_xticks(range(n), [str(k) for k in range(n)])
        ax.set_yticks(range(n), [f"{k} {names[k]}" for k in range(n)])
        ax.set_xlabel("predicted label")
        ax.set_ylabel("ground truth")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    cell, font = 36, cv2.FONT_HERSHEY_SIMPLEX
    row_texts = [f"{k} {names[k]}"[:28] for k in range(n)]
    left = 12 + max((cv2.getTextSize(t, font, 0.45, 1)[0][0] for t in row_texts), default=0)
    top = 56
    img = np.full((top + n * cell + 30, left + n * cell + 12, 3), 255, dtype=np.uint8)
    cv2.putText(img, "predicted label", (left, 18), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(n):
        x = left + k * cell
        cv2.putText(img, str(k), (x + 8, top - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, row_texts[k], (6, top + k * cell + 23), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for p in range(n):
            x0, y0 = left + p * cell, top + k * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), _cell_colour(shares[k, p]), -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (200, 200, 200), 1)
            if cm[k, p]:
                colour = (255, 255, 255) if shares[k, p] > 0.6 else (0, 0, 0)
                cv2.putText(img, str(int(cm[k, p])), (x0 + 5, y0 + 23), font, 0.45, colour, 1, cv2.LINE_AA)
    cv2.putText(img, "rows: ground truth", (6, img.shape[0] - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")
    return path


@dataclass
class ValidationResult:
    out_dir: Path
    metrics: dict[str, Any]
    confusion: np.ndarray = field(repr=False)
    per_class: list[dict[str, Any]] = field(repr=False)
    files: list[str] = field(default_factory=list)


def write_validation(
    out_dir: str | Path,
    items: Sequence[ItcItem],
    probabilities: np.ndarray,
    label_map: LabelMap,
    extra_metrics: dict[str, Any] | None = None,
) -> ValidationResult:
    """Write the five outputs (module docstring) for already-computed probabilities."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_classes = label_map.n_classes
    gt = np.array([i.label for i in items], dtype=np.int64)
    pred = probabilities.argmax(axis=1) if len(items) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(gt, pred, n_classes)

    rows = []
    for item, p, probs in zip(items, pred, probabilities, strict=True):
        row = {
            "tuboid_id": item.tuboid_id,
            "directory": str(item.directory),
            "gt_label": item.label,
            "gt_pattern": label_map.pattern_for(item.label),
            "label": int(p),
            "pattern": label_map.pattern_for(int(p)),
            "probability": float(probs[p]),
            "correct": bool(p == item.label),
        }
        row.update({f"prob_{k}": float(v) for k, v in enumerate(probs)})
        rows.append(row)
    columns = ["tuboid_id", "directory", "gt_label", "gt_pattern", "label", "pattern", "probability", "correct"]
    columns += [f"prob_{k}" for k in range(n_classes)]
    pd.DataFrame(rows, columns=columns).to_csv(out_dir / RESULTS_CSV, index=False)

    labels = list(range(n_classes))
    cm_df = pd.DataFrame(cm, index=pd.Index(labels, name="gt_label"), columns=[str(k) for k in labels])
    cm_df.to_csv(out_dir / CONFUSION_CSV)

    per_class = per_class_metrics(cm)
    for r in per_class:
        r["pattern"] = label_map.pattern_for(r["label"])
        r["name"] = short_name(label_map, r["label"])
    per_class_columns = ["label", "name", "pattern", "support", "predicted", "tp", "precision", "recall", "f1"]
    pd.DataFrame(per_class, columns=per_class_columns).to_csv(out_dir / PER_CLASS_CSV, index=False)

    metrics = summary_metrics(cm)
    metrics["loss"] = cross_entropy(probabilities, gt)
    metrics["n_classes"] = n_classes
    # per taxon and the matrix, for the registry, the model asset's metadata and promotion (a lost class)
    metrics["per_class"] = [
        {k: r[k] for k in ("name", "support", "predicted", "tp", "recall", "precision")}
        for r in per_class
        if r["support"] or r["predicted"]
    ]
    metrics["confusion"] = {"labels": [short_name(label_map, k) for k in labels], "counts": cm.tolist()}
    metrics.update(extra_metrics or {})
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    (out_dir / METRICS_JSON).write_text(json.dumps(metrics, indent=2), encoding="utf-8")

    draw_confusion_png(cm, [short_name(label_map, k) for k in labels], out_dir / CONFUSION_PNG)
    files = [RESULTS_CSV, CONFUSION_CSV, PER_CLASS_CSV, METRICS_JSON, CONFUSION_PNG]
    return ValidationResult(out_dir=out_dir, metrics=metrics, confusion=cm, per_class=per_class, files=files)


def validate(
    bundle_dir: str | Path,
    target: str | Path,
    *,
    device: str | torch.device = "cpu",
    config: ItcConfig | None = None,
) -> ValidationResult:
    """Run the bundle's weights on its validation tuboids and write the outputs into ``target`` (created).

    The network, its labels and its preprocessing come from the checkpoint; the data rules (annotation rule,
    split) from ``config``, by default the configuration saved with the weights, so the validation tuboids
    are exactly those the training run held out.
    """
    from stickypi_assets.ml.itc.predict import load_classifier

    bundle_dir = Path(bundle_dir)
    classifier, model_config, version = load_classifier(bundle_dir, device=device)
    data_config = config or model_config
    if data_config.labels != model_config.labels:
        raise ValueError("the config's LABELS differ from those the weights were trained with")
    data_config = data_config.replace(input_size=model_config.input_size, n_shots=model_config.n_shots)
    data = bundle_data(bundle_dir, data_config)
    if not data.validation:
        log.warning("no validation tuboids in %s: the outputs will be empty", bundle_dir / "data")
    probabilities = evaluate_items(classifier.net, data.validation, data_config, device=device, cache=data.cache)
    extra = {
        "model_version": version,
        "weights": str(bundle_dir / WEIGHTS_RELPATH),
        "n_skipped": len(data.report.skipped),
        "skipped": [{"tuboid_id": t, "reason": r} for t, r in data.report.skipped],
    }
    result = write_validation(target, data.validation, probabilities, data.label_map, extra)
    log.info("ITC validation: %s", {k: result.metrics[k] for k in ("n", "accuracy", "macro_f1")})
    return result


def validation_metrics(bundle_dir: str | Path, out_dir: str | Path, *, device: str = "cpu") -> dict[str, Any]:
    """The stage table's validator: :func:`validate`'s metrics (``accuracy``, the figure promotion compares, …)."""
    return validate(bundle_dir, out_dir, device=device).metrics
