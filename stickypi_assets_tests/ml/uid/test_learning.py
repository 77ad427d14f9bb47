"""THE learning test: a randomly initialised small Mask R-CNN learns real insects on one real card.

Overfitting proof, not a benchmark of generalisation: the model trains from random weights (nothing is
downloaded) on random crops of one 512 x 512 region of a real annotated image (21 insects, in
``../shared/data/stickypi/uid``), then the whole inference pipeline (padding, overlapping tiles, filters,
mask → polygon, cross-tile merge) and ``validate()`` run on the same region re-encoded into the validation
split. It must find at least 80 % of the annotated insects at IoU 0.5, with precision at least 0.5.
Everything goes through the public ``train``/``validate`` API and a real bundle layout, so this also proves
that the data pipeline keeps polygons on their pixels and that training, checkpoints and prediction fit
together.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.train import train
from stickypi_assets.ml.uid.validate import validate
from stickypi_assets_tests.conftest import stickypi_path
from stickypi_assets_tests.ml.uid.helpers import make_bundle

pytestmark = pytest.mark.slow

SVG = "e086a015.2020-06-11_19-25-02.svg"
REGION = (1984, 0, 512)  # x, y, size: the densest 512 px window of the densest card (top edge of the image)

LEARNING_CONFIG = UidConfig(
    backbone="resnet18_fpn",
    fpn_channels=64,
    box_head_dim=256,
    mask_head_channels=64,
    crop_size=256,
    ims_per_batch=2,
    rpn_pre_nms_top_n_train=600,
    rpn_post_nms_top_n_train=300,
    rpn_pre_nms_top_n_test=600,
    rpn_post_nms_top_n_test=300,
    roi_batch_size_per_image=128,
    detections_per_image=100,
    optimizer="sgd",
    base_lr=0.02,
    warmup_iters=100,
    steps=[600, 800],
    gamma=0.1,
    max_iter=900,
    grad_clip_norm=10.0,
    printing_period=50,
    checkpoint_period=10**6,
    test_period=10**6,
    tile_size=384,
    tile_overlap=160,
    # a 5-minute model is less confident than a trained one (0.85); at 0.3 a run on another CPU found 17/21
    # (precision 0.85), at 0.2 the same weights find 18/21 (precision 0.82): precision is held below too
    score_threshold=0.2,
    match_iou=0.5,
    seed=0,
)


@pytest.fixture(autouse=True)
def _two_torch_threads():
    """The figures of this test were measured with 2 torch threads: fixed, so that the machine's core count or a
    parallel test worker does not change the floating-point path of training (and so the model it trains)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_training_from_random_init_finds_the_insects_of_one_real_card(tmp_path, record_property):
    doc = read_uid_svg(stickypi_path("uid", SVG))
    x, y, size = REGION
    region = np.ascontiguousarray(doc.decode_image()[y : y + size, x : x + size])
    polygons = [
        inst.polygon - [x, y]
        for inst in doc.instances
        if (inst.polygon.min(axis=0) >= [x, y]).all() and (inst.polygon.max(axis=0) < [x + size, y + size]).all()
    ]
    assert len(polygons) == 21
    bundle = make_bundle(
        tmp_path / "bundle",
        LEARNING_CONFIG,
        {"train_region": (region, polygons, "train"), "same_region": (region, polygons, "validation")},
    )

    started = time.perf_counter()
    result = train(bundle, progress=False)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    report = validate(bundle, tmp_path / "validation")
    validate_s = time.perf_counter() - started

    overall = report.metrics["overall"]
    summary = {
        "iterations": result.iterations,
        "train_s": round(train_s, 1),
        "validate_s": round(validate_s, 1),
        "recall": overall["recall"],
        "precision": overall["precision"],
        "mask_AP50": report.metrics["coco_mask"].get("AP50"),
        "final_loss": round(result.last_losses["total_loss"], 3),
    }
    print("UID learning test:", json.dumps(summary))
    for key, value in summary.items():
        record_property(key, value)
    assert overall["n_gt"] == 21
    assert overall["recall"] >= 0.8, summary
    assert overall["precision"] >= 0.5, summary  # a lower threshold must not buy recall with noise
