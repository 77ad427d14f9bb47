"""Training loop mechanics on a tiny model: schedule, checkpoints, metrics log, resume and restart."""

from __future__ import annotations

import json

import pytest

from stickypi_assets.ml.uid.config import UidConfig, load_config
from stickypi_assets.ml.uid.train import lr_factor, train
from stickypi_assets_tests.ml.uid.helpers import make_bundle, rectangle, synthetic_card

TINY = UidConfig(
    backbone="resnet18_fpn",
    fpn_channels=16,
    box_head_dim=32,
    mask_head_channels=16,
    rpn_pre_nms_top_n_train=50,
    rpn_post_nms_top_n_train=50,
    roi_batch_size_per_image=16,
    crop_size=64,
    ims_per_batch=2,
    base_lr=0.001,
    warmup_iters=2,
    steps=[3],
    max_iter=4,
    checkpoint_period=2,
    printing_period=1,
    test_period=2,
    original_image_padding=8,
)


def test_warmup_then_multistep_schedule():
    config = UidConfig(warmup_iters=100, warmup_factor=0.001, steps=[200, 300], gamma=0.5)
    assert lr_factor(0, config) == pytest.approx(0.001)
    assert lr_factor(50, config) == pytest.approx(0.001 * 0.5 + 0.5)
    assert lr_factor(100, config) == 1.0 and lr_factor(199, config) == 1.0
    assert lr_factor(200, config) == 0.5 and lr_factor(300, config) == 0.25


def test_train_writes_checkpoints_metrics_and_resumes(tmp_path):
    polys = [rectangle(20, 20, 30, 25), rectangle(70, 60, 25, 30)]
    card = synthetic_card(120, 100, polys)
    bundle = make_bundle(tmp_path / "bundle", TINY, {"t": (card, polys, "train"), "v": (card, polys, "validation")})
    result = train(bundle, progress=False)
    out = bundle / "output"
    assert (result.start_iteration, result.iterations) == (0, 4)
    assert (result.n_train_images, result.n_validation_images) == (1, 1)
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_0000001.pth", "model_final.pth"]
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert result.weights == out / "model_final.pth" and len(result.version) == 32
    assert load_config(out / "config.yaml") == TINY
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if "total_loss" in r]
    val_lines = [r for r in lines if "val_total_loss" in r]
    assert [r["iteration"] for r in train_lines] == [0, 1, 2, 3]
    assert [r["iteration"] for r in val_lines] == [0, 1, 3]  # first step, every TEST_PERIOD, end
    assert {"loss_mask", "lr", "time", "data_time"} <= set(train_lines[0])
    assert {"val_loss_mask", "val_instance_weighted_total_loss"} <= set(val_lines[0])
    assert train_lines[0]["lr"] == pytest.approx(0.001 * 0.001) and train_lines[3]["lr"] == pytest.approx(0.001 * 0.8)
    assert set(result.validation_losses) == {k for k in val_lines[-1] if k != "iteration"}

    # resume: continues after the final iteration recorded in last_checkpoint
    resumed = train(bundle, max_iter=6, progress=False)
    assert (resumed.start_iteration, resumed.iterations) == (4, 6)
    # nothing left to do: no iteration runs and the final weights stay as they are
    done = train(bundle, max_iter=6, progress=False)
    assert done.start_iteration == done.iterations == 6 and done.version == resumed.version
    # restart: from iteration 0 (initialised from model_final.pth, as detectron2 did)
    restarted = train(bundle, restart=True, max_iter=1, progress=False)
    assert (restarted.start_iteration, restarted.iterations) == (0, 1)


def test_resume_from_a_periodic_checkpoint(tmp_path):
    polys = [rectangle(20, 20, 30, 25)]
    card = synthetic_card(100, 80, polys)
    bundle = make_bundle(tmp_path / "b", TINY.replace(max_iter=2), {"t": (card, polys, "train")})
    out = bundle / "output"
    train(bundle, progress=False)  # iterations 0, 1 → no periodic checkpoint (1 is the last), final written
    result = train(bundle, max_iter=5, progress=False)  # 2, 3 (checkpoint model_0000003), 4
    assert (result.start_iteration, result.iterations) == (2, 5) and result.n_validation_images == 0
    assert (out / "model_0000003.pth").exists()
    (out / "last_checkpoint").write_text("model_0000003.pth")
    again = train(bundle, max_iter=5, progress=False)
    assert (again.start_iteration, again.iterations) == (4, 5)


def test_no_training_images_is_a_clear_error(tmp_path):
    polys = [rectangle(20, 20, 30, 25)]
    bundle = make_bundle(tmp_path / "b", TINY, {"v": (synthetic_card(100, 80, polys), polys, "validation")})
    with pytest.raises(ValueError, match="no training images"):
        train(bundle, progress=False)


def test_an_unreadable_svg_is_skipped_reported_and_training_goes_on(tmp_path, caplog):
    polys = [rectangle(20, 20, 30, 25)]
    card = synthetic_card(100, 80, polys)
    bundle = make_bundle(tmp_path / "b", TINY.replace(max_iter=1), {"t": (card, polys, "train")})
    deep = "<g>" * 100_000 + "</g>" * 100_000
    (bundle / "data" / "deep.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg">{deep}</svg>')
    with caplog.at_level("WARNING", logger="stickypi_assets.ml.uid.dataset"):
        result = train(bundle, progress=False)
    reason = "deep.svg: elements nested deeper than 1000 levels (hostile or broken file)"
    assert result.skipped == [("deep.svg", reason)]
    assert f"UID data: skipped deep.svg: {reason}" in caplog.text
    assert (result.n_train_images, result.iterations) == (1, 1) and result.weights.exists()  # trained on the rest
    lines = [json.loads(line) for line in (bundle / "output" / "metrics.jsonl").read_text().splitlines()]
    (data,) = [r for r in lines if r.get("event") == "data"]
    assert data["skipped_files"] == [{"file": "deep.svg", "reason": reason}] and data["n_train_images"] == 1
    assert [r["iteration"] for r in lines if "total_loss" in r] == [0]


def test_a_bundle_of_unreadable_svgs_is_a_clear_error(tmp_path):
    bundle = make_bundle(tmp_path / "b", TINY, {})
    (bundle / "data").mkdir()
    (bundle / "data" / "broken.svg").write_text("<svg><image xlink:href='data:nope'")
    with pytest.raises(ValueError, match=r"no usable annotation SVG .*all 1 skipped \(broken\.svg: broken\.svg: not"):
        train(bundle, progress=False)
