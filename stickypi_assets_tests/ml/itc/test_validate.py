"""Validation metrics against hand-computed values, and the five output files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.ml.itc.dataset import ItcItem
from stickypi_assets.ml.itc.validate import (
    confusion_matrix,
    draw_confusion_png,
    per_class_metrics,
    summary_metrics,
    validate,
    write_validation,
)
from stickypi_assets_tests.ml.itc.helpers import LABELS

GT = [0, 0, 0, 1, 1, 2]
PRED = [0, 0, 1, 1, 2, 2]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(GT, PRED, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 0], 4)


def test_precision_recall_f1_by_hand():
    rows = per_class_metrics(confusion_matrix(GT, PRED, 4))
    # label 0: TP 2 of 3, predicted twice; label 1: TP 1 of 2, predicted twice; label 2: TP 1 of 1, predicted twice
    assert [(r["support"], r["predicted"], r["tp"]) for r in rows] == [(3, 2, 2), (2, 2, 1), (1, 2, 1), (0, 0, 0)]
    assert [r["precision"] for r in rows] == pytest.approx([1.0, 0.5, 0.5, None])
    assert [r["recall"] for r in rows[:3]] == pytest.approx([2 / 3, 0.5, 1.0]) and rows[3]["recall"] is None
    assert [r["f1"] for r in rows[:3]] == pytest.approx([0.8, 0.5, 2 / 3]) and rows[3]["f1"] is None
    summary = summary_metrics(confusion_matrix(GT, PRED, 4))
    assert summary["n"] == 6 and summary["n_classes_present"] == 3  # label 3 has no support: not averaged
    assert summary["accuracy"] == pytest.approx(4 / 6)
    assert summary["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert summary["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert summary["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert summary["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)


def test_a_class_never_predicted_has_no_precision_and_zero_f1():
    rows = per_class_metrics(confusion_matrix([0, 1], [0, 0], 2))
    assert rows[1]["precision"] is None and rows[1]["recall"] == 0.0 and rows[1]["f1"] == 0.0
    assert rows[0]["precision"] == 0.5 and rows[0]["f1"] == pytest.approx(2 / 3)
    summary = summary_metrics(confusion_matrix([0, 1], [0, 0], 2))
    assert summary["macro_precision"] == 0.25  # undefined precision counts as 0
    assert summary_metrics(np.zeros((2, 2), dtype=int))["accuracy"] is None


def test_write_validation_outputs(tmp_path: Path):
    label_map = LabelMap.from_config(LABELS)
    items = [
        ItcItem(f"t{k}", tmp_path / f"t{k}", label, "", f"{k:032x}", "validation", 3)
        for k, label in enumerate([0, 0, 1])
    ]
    probabilities = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1]])
    result = write_validation(tmp_path / "out", items, probabilities, label_map, {"model_version": "abc"})
    out = tmp_path / "out"
    assert (
        sorted(p.name for p in out.iterdir())
        == sorted(result.files)
        == sorted(["results.csv", "confusion_matrix.csv", "per_class.csv", "metrics.json", "confusion_matrix.png"])
    )
    cm = pd.read_csv(out / "confusion_matrix.csv", index_col="gt_label")
    assert cm.values.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]] and list(cm.columns) == ["0", "1", "2"]
    per_class = pd.read_csv(out / "per_class.csv")
    assert per_class["name"].tolist() == ["Muscidae", "Coccinellidae", "Insecta"]
    assert per_class["precision"].tolist()[:2] == [1.0, 0.5] and np.isnan(per_class["precision"][2])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["model_version"] == "abc"
    assert metrics["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.3, 0.7])))
    results = pd.read_csv(out / "results.csv")
    assert results["label"].tolist() == [0, 1, 1] and results["correct"].tolist() == [True, False, True]
    assert results["probability"].tolist() == pytest.approx([0.8, 0.6, 0.7])
    assert {"prob_0", "prob_1", "prob_2", "gt_pattern", "pattern"} <= set(results.columns)
    png = cv2.imread(str(out / "confusion_matrix.png"))
    assert png is not None and png.shape[0] > 100


def test_png_fallback_without_matplotlib(tmp_path: Path):
    path = draw_confusion_png(np.array([[3, 1], [0, 2]]), ["Muscidae", "Drosophila suzukii"], tmp_path / "cm.png")
    img = cv2.imread(str(path))
    assert img is not None and img.shape[2] == 3 and (img < 128).any()  # text and dark cells drawn


def test_validate_a_trained_bundle(trained_bundle: Path, tmp_path: Path):
    result = validate(trained_bundle, tmp_path / "validation")
    held_out = json.loads((trained_bundle / "output" / "dataset.json").read_text())["validation"]
    results = pd.read_csv(tmp_path / "validation" / "results.csv")
    assert results["tuboid_id"].tolist() == [i["tuboid_id"] for i in held_out]  # the training's held-out tuboids
    assert result.metrics["n"] == 6 and result.metrics["n_classes"] == 3 and len(result.metrics["model_version"]) == 32
    assert result.confusion.sum() == 6
