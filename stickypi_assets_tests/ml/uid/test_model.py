"""The torchvision Mask R-CNN detector: shapes, native scale, channel order, losses, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import Detector, TileDetections, TrainableDetector
from stickypi_assets.ml.uid.model import MaskRCNNDetector, bgr_to_tensor, build_maskrcnn, weights_version

TINY = UidConfig(
    backbone="resnet18_fpn",
    fpn_channels=16,
    box_head_dim=32,
    mask_head_channels=16,
    rpn_pre_nms_top_n_test=50,
    rpn_post_nms_top_n_test=50,
    detections_per_image=20,
    box_score_thresh=0.0,
)


@pytest.fixture(scope="module")
def detector() -> MaskRCNNDetector:
    torch.manual_seed(0)
    return MaskRCNNDetector(TINY)


def test_protocols(detector):
    assert isinstance(detector, Detector) and isinstance(detector, TrainableDetector)


def test_bgr_is_converted_to_rgb_in_unit_range():
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 255  # B, G, R
    tensor = bgr_to_tensor(image)
    assert tensor.shape == (3, 2, 3)
    np.testing.assert_allclose(tensor[:, 0, 0].numpy(), [1.0, 20 / 255, 10 / 255], rtol=1e-6)
    with pytest.raises(ValueError):
        bgr_to_tensor(image.astype(np.float32))


def test_tiles_are_never_rescaled(detector):
    images = [torch.rand(3, 50, 70), torch.rand(3, 1024, 1024)]
    batch, _ = detector.model.transform(images)
    assert batch.image_sizes == [(50, 70), (1024, 1024)]


def test_predict_batch_returns_box_frame_masks_within_each_tile(detector):
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8), rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)]
    out = detector.predict_batch(tiles)
    assert len(out) == 2 and detector.predict_batch([]) == []
    for det, tile in zip(out, tiles, strict=True):
        assert isinstance(det, TileDetections) and det.masks_in_boxes
        assert len(det) <= TINY.detections_per_image
        assert det.masks.shape[1:] == (28, 28)
        assert (det.boxes[:, [0, 2]] <= tile.shape[1]).all() and (det.boxes[:, [1, 3]] <= tile.shape[0]).all()
        assert ((det.labels >= 0) & (det.labels < 1)).all()


def test_losses_with_and_without_objects_and_no_batchnorm_drift_in_loss_mode(detector):
    image = np.full((64, 64, 3), 200, np.uint8)
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[0, 10:30, 20:50] = 1
    empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64), "masks": masks[:0]}
    targets = [{"boxes": np.array([[20, 10, 50, 30]], np.float32), "labels": np.array([0]), "masks": masks}, empty]
    bn = next(m for m in detector.model.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    detector.eval_losses_mode()
    with torch.no_grad():
        losses = detector.losses([image, image], targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert torch.equal(bn.running_mean, before)
    detector.train()
    detector.losses([image], targets[:1])
    assert not torch.equal(bn.running_mean, before)
    detector.eval()


def test_save_and_load_round_trip(tmp_path, detector):
    path = detector.save(tmp_path / "w.pth", iteration=7)
    other = MaskRCNNDetector(TINY)
    checkpoint = other.load_weights(path)
    assert checkpoint["iteration"] == 7 and checkpoint["config"]["BACKBONE"] == "resnet18_fpn"
    tile = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    a, b = detector.predict_batch([tile])[0], other.predict_batch([tile])[0]
    np.testing.assert_allclose(a.boxes, b.boxes)
    np.testing.assert_allclose(a.scores, b.scores)
    torch.save(detector.model.state_dict(), tmp_path / "bare.pth")  # bare state dicts load too
    other.load_weights(tmp_path / "bare.pth")
    assert len(weights_version(path)) == 32


def test_default_resnet50_builds_without_downloading():
    model = build_maskrcnn(UidConfig())
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert model.roi_heads.detections_per_img == 500 and model.rpn.nms_thresh == 0.9
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.body.modules())  # random init: trainable BN
    assert sum(p.numel() for p in model.parameters()) > 40e6
