"""One-to-one matching (reference 3.5 defects fixed), results.json/metrics.json, and validate() end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.validate import (
    EvaluatedImage,
    coco_mask_ap,
    compute_metrics,
    evaluate,
    iou_match_pairs,
    iou_matrix,
    match_records,
    validate,
)
from stickypi_assets_tests.ml.uid.helpers import BlobDetector, make_bundle, rectangle, synthetic_card


def test_prediction_index_zero_is_a_match_not_a_miss():
    # The original wrote in_im=False for (g, 0) because ``0`` is falsy.
    assert iou_match_pairs(np.array([[0.9]]), 0.33) == [(0, 0)]
    assert iou_match_pairs(np.array([[0.1, 0.8], [0.7, 0.2]]), 0.33) == [(0, 1), (1, 0)]


def test_greedy_global_maximum_and_lost_competitions_are_reported():
    iou = np.array(
        [
            [0.9, 0.6, 0.0],  # g0: best with p0
            [0.8, 0.0, 0.0],  # g1: wants p0 too, loses to g0 → false negative (the original dropped it)
            [0.0, 0.5, 0.4],  # g2: p1 (0.5) beats p2 (0.4)
        ]
    )
    pairs = iou_match_pairs(iou, 0.33)
    assert pairs == [(0, 0), (2, 1), (1, None), (None, 2)]


def test_threshold_is_inclusive_and_below_it_nothing_matches():
    assert iou_match_pairs(np.array([[0.33]]), 0.33) == [(0, 0)]
    assert iou_match_pairs(np.array([[0.3299]]), 0.33) == [(0, None), (None, 0)]


def test_ties_go_to_the_lower_gt_then_the_lower_prediction():
    assert iou_match_pairs(np.array([[0.5, 0.5], [0.5, 0.5]]), 0.33) == [(0, 0), (1, 1)]
    assert iou_match_pairs(np.array([[0.5], [0.5]]), 0.33) == [(0, 0), (1, None)]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((0, 0), []), ((2, 0), [(0, None), (1, None)]), ((0, 3), [(None, 0), (None, 1), (None, 2)])],
)
def test_empty_sets(shape, expected):
    assert iou_match_pairs(np.zeros(shape), 0.33) == expected


def test_every_row_and_column_appears_exactly_once_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(50):
        iou = rng.random((rng.integers(0, 6), rng.integers(0, 6))) * (rng.random() < 0.8)
        pairs = iou_match_pairs(iou, 0.4)
        assert sorted(g for g, _ in pairs if g is not None) == list(range(iou.shape[0]))
        assert sorted(p for _, p in pairs if p is not None) == list(range(iou.shape[1]))
        assert all(iou[g, p] >= 0.4 for g, p in pairs if g is not None and p is not None)


def test_iou_matrix_on_rectangles():
    gt = [rectangle(0, 0, 10, 10), rectangle(100, 100, 10, 10)]
    pred = [rectangle(100, 100, 10, 10), rectangle(0, 5, 10, 10)]
    # rectangles are traced through pixel centres: 10 x 10 px squares have polygon side 9
    np.testing.assert_allclose(iou_matrix(gt, pred), [[0.0, 36 / 126], [1.0, 0.0]])


def _inst(x, y, w, h, stroke="#0000ff", score=None) -> Instance:
    return Instance(rectangle(x, y, w, h), stroke=stroke, score=score)


def test_results_records_and_metrics_on_a_hand_made_case():
    config = UidConfig(match_iou=0.5, large_object_area=1000)
    gt = [_inst(0, 0, 51, 51), _inst(200, 200, 11, 11), _inst(400, 400, 41, 41), _inst(0, 300, 5, 5, "#ff00ff")]
    pred = [
        _inst(0, 0, 51, 51, score=0.9),  # matches the large GT (prediction index 0)
        _inst(205, 205, 11, 11, score=0.8),  # overlaps the small GT with IoU 25/175 < 0.5 → FP and FN
        _inst(600, 600, 41, 41, score=0.7),  # FP, large
    ]
    records = match_records(gt, pred, "card.svg", config)
    assert records == [
        {"area": 2500.0, "in_gt": True, "in_im": True, "class": "insect", "filename": "card.svg"},
        {"area": 100.0, "in_gt": True, "in_im": False, "class": "insect", "filename": "card.svg"},
        {"area": 1600.0, "in_gt": True, "in_im": False, "class": "insect", "filename": "card.svg"},
        {"area": 100.0, "in_gt": False, "in_im": True, "class": "insect", "filename": "card.svg"},
        {"area": 1600.0, "in_gt": False, "in_im": True, "class": "insect", "filename": "card.svg"},
    ]  # the magenta GT is outside the palette: ignored
    metrics = compute_metrics(records, config)
    assert metrics["overall"] == {
        "precision": 1 / 3,
        "recall": 1 / 3,
        "true_positives": 1,
        "false_positives": 2,
        "false_negatives": 2,
        "n_gt": 3,
        "n_pred": 3,
    }
    assert metrics["large_objects"]["precision"] == 1 / 2 and metrics["large_objects"]["recall"] == 1 / 2
    assert compute_metrics([], config)["overall"]["precision"] is None


def test_coco_mask_ap_is_one_for_perfect_predictions_and_lower_with_misses():
    pytest.importorskip("pycocotools")
    config = UidConfig()
    gt = [_inst(10, 10, 40, 30), _inst(100, 100, 25, 50)]
    pred = [_inst(10, 10, 40, 30, score=0.9), _inst(100, 100, 25, 50, score=0.8)]
    perfect = [EvaluatedImage("a.svg", 200, 200, gt, pred)]
    assert coco_mask_ap(perfect, config)["AP"] == pytest.approx(1.0)
    half = [EvaluatedImage("a.svg", 200, 200, gt, [_inst(10, 10, 40, 30, score=0.9)])]
    assert 0.3 < coco_mask_ap(half, config)["AP"] < 0.7
    assert coco_mask_ap([EvaluatedImage("a.svg", 200, 200, gt, [])], config)["AP"] == 0.0


def test_validate_writes_results_metrics_and_overlay_svgs(tmp_path, capsys):
    # A model-free detector on synthetic cards: tiling, merging and matching run for real.
    config = UidConfig(tile_size=128, tile_overlap=48, edge_margin=8, original_image_padding=16, match_iou=0.5)
    polys = [rectangle(20, 20, 40, 30), rectangle(100, 90, 60, 40), rectangle(230, 150, 30, 30)]
    card = synthetic_card(300, 220, polys)
    hidden = synthetic_card(300, 220, polys[:2])  # the third insect is annotated but not visible: a miss
    bundle = make_bundle(
        tmp_path / "bundle",
        config,
        {"val_a": (card, polys, "validation"), "val_b": (hidden, polys, "validation"), "train": (card, polys, "train")},
    )
    result = validate(bundle, tmp_path / "out", detector=BlobDetector(), config=config, version="v1")
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert records == result.records and len(records) == 6
    assert {r["filename"] for r in records} == {"val_a.svg", "val_b.svg"}
    assert sum(r["in_gt"] and r["in_im"] for r in records) == 5
    (missed,) = [r for r in records if not r["in_im"]]
    assert missed == {"area": 29.0 * 29.0, "in_gt": True, "in_im": False, "class": "insect", "filename": "val_b.svg"}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["overall"]["precision"] == 1.0 and metrics["overall"]["recall"] == pytest.approx(5 / 6)
    assert metrics["n_images"] == 2 and metrics["model_version"] == "v1"
    overlay = read_uid_svg(tmp_path / "out" / "validation_val_a.svg")
    fills = sorted(i.fill for i in overlay.instances)
    assert fills == ["#0000ff"] * 3 + ["#ff0000"] * 3
    text = (tmp_path / "out" / "validation_val_a.svg").read_text()  # the reference's opacities: GT 0.3, predictions 0.2
    assert text.count("fill:#0000ff;fill-opacity:0.300000") == 3
    assert text.count("fill:#ff0000;fill-opacity:0.200000") == 3
    assert result.files == ["validation_val_a.svg", "validation_val_b.svg"]
    again = validate(bundle, tmp_path / "out2", detector=BlobDetector(), config=config, version="v1", progress=True)
    assert again.records == result.records
    err = capsys.readouterr().err
    assert "uid validate" in err and "3/3" in err  # one step per SVG of data/


def test_evaluate_with_no_validation_images():
    records, metrics = evaluate([], UidConfig())
    assert records == [] and metrics["overall"]["recall"] is None and metrics["n_images"] == 0


def test_an_unreadable_validation_svg_is_recorded_and_the_others_are_scored(tmp_path):
    config = UidConfig(tile_size=128, tile_overlap=48, edge_margin=8, original_image_padding=16, match_iou=0.5)
    polys = [rectangle(20, 20, 40, 30), rectangle(100, 90, 60, 40)]
    card = synthetic_card(300, 220, polys)
    bundle = make_bundle(tmp_path / "bundle", config, {"val_a": (card, polys, "validation")})
    (bundle / "data" / "broken.svg").write_text("<svg><g>" * 2 + "not closed")
    result = validate(bundle, tmp_path / "out", detector=BlobDetector(), config=config, version="v1")
    assert result.metrics["n_images"] == 1 and result.metrics["overall"]["recall"] == 1.0
    (skipped,) = result.metrics["skipped_files"]
    assert skipped["file"] == "broken.svg" and "broken.svg" in skipped["reason"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped_files"] == [skipped]
